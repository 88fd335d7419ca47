"""`python -m collector` used to start the collector; it is `footfall collect` now.

The collector sits below the CLI and may not import it, so this only points the way.
"""

import sys

print("python -m collector: the collector starts with `footfall collect --config PATH` "
      "(or `python -m footfall collect --config PATH`); change the service's command line",
      file=sys.stderr)
sys.exit(2)
