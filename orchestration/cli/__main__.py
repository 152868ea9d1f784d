"""`python -m orchestration.cli`: the `salesmon` command."""

import sys

from orchestration.cli import main

sys.exit(main())
