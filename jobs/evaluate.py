"""The evaluate job's entrypoint: ``ray job submit -- python jobs/evaluate.py --model M --data DATA --out OUT``.

Takes the same options as ``archive-colorizer evaluate``; see ``--help``. The evaluation runs
in the driver process (no Ray tasks), so ``--out`` should be a URL the cluster can write to.
"""

import sys

from archive_colorizer.entrypoint import main

if __name__ == "__main__":
    main(["evaluate", *sys.argv[1:]])
