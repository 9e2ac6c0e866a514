"""`python -m exchange.cli`: the same as the `paperx` command."""

import sys

from exchange.cli.main import main

sys.exit(main())
