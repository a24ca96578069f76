"""``ray job submit -- python jobs/colorize.py INPUT OUTPUT --model M ...``: the colorize job's entrypoint.

Takes the same options as ``archive-colorizer colorize``; see ``--help``.
"""

import sys

from archive_colorizer.entrypoint import main

if __name__ == "__main__":
    main(["colorize", *sys.argv[1:]])
