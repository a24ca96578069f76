"""``ray job submit -- python jobs/plan.py INPUT --model M [--cluster cluster.yaml]``: the plan job's entrypoint.

Takes the same options as ``archive-colorizer plan``; see ``--help``. The plan runs in the
driver process (no Ray tasks): it times colorize's stages on the node it runs on.
"""

import sys

from archive_colorizer.entrypoint import main

if __name__ == "__main__":
    main(["plan", *sys.argv[1:]])
