"""`python -m mesainterp` runs the command line."""

import sys

from mesainterp.cli.main import main

sys.exit(main())
