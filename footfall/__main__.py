"""`python -m footfall COMMAND …` is the `footfall` command, for when it is not on PATH."""

import sys

from footfall.cli import main

sys.exit(main())
