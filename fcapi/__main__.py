"""`python -m fcapi SUBCOMMAND`: see fcapi.cli."""

import sys

from fcapi.cli import main

if __name__ == "__main__":
    sys.exit(main())
