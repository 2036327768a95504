"""`python -m aios`: the command-line client (see aios/cli.py)."""

import sys

from .cli import main

sys.exit(main())
