"""``ray job submit --working-dir . -- python jobs/train.py --data ... --run ...``: the train job."""

import sys

from archive_colorizer.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
