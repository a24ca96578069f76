"""``ray job submit --working-dir . -- python jobs/train.py --data ... --run ...``: the train job."""

import sys

from archive_colorizer.entrypoint import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
