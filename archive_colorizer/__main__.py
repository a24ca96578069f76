"""``python -m archive_colorizer ...``: the same as the ``archive-colorizer`` command."""

from archive_colorizer.entrypoint import main

if __name__ == "__main__":  # pragma: no cover
    main()
