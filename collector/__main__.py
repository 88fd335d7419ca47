"""`python -m collector [--config PATH]` is `footfall collect`."""

import sys

from footfall.cli import main

sys.exit(main(["collect", *sys.argv[1:]]))
