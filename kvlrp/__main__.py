"""``python -m kvlrp`` runs the console script."""

import sys

from kvlrp.cli import main

sys.exit(main())
