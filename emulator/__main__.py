"""`python -m emulator ...`: see emulator/cli/main.py."""

import sys

from emulator.cli.main import main

sys.exit(main())
