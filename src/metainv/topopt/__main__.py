"""``python -m metainv.topopt LAW [options]``: the same as ``metainv laws table LAW [options]``."""

import sys

from metainv.cli import app

if __name__ == "__main__":
    app(["laws", "table", *sys.argv[1:]])
