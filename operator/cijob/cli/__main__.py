"""`python -m cijob.cli`: the `cijob` command."""

import sys

from cijob.cli import main

sys.exit(main())
