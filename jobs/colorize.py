"""``ray job submit -- python jobs/colorize.py INPUT OUTPUT --model M ...``: the colorize job's entrypoint.

Takes the same options as ``archive-colorizer colorize``; see ``--help``.
"""

import sys

from archive_colorizer.cli import main

if __name__ == "__main__":
    sys.exit(main(["colorize", *sys.argv[1:]]))
