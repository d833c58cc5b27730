"""``python -m semcomm ...``: the same as the ``semcomm`` console script."""

from semcomm.cli import main

if __name__ == "__main__":  # spawned worker processes re-import this module
    raise SystemExit(main())
