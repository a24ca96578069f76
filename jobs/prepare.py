"""``ray job submit -- python jobs/prepare.py INPUT OUTPUT [options]``: the prepare job's entrypoint.

Takes the same options as ``archive-colorizer prepare``.
"""

import sys

from archive_colorizer.entrypoint import main

if __name__ == "__main__":
    main(["prepare", *sys.argv[1:]])
