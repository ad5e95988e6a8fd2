"""``python -m collectord``: the same as the ``collectord`` command."""

import sys

from collectord.cli import main

sys.exit(main())
