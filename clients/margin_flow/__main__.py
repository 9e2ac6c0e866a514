"""Run the margin workload's command line: ``python -m clients.margin_flow``."""

import sys

# `main` lives in `_cli` so that the package can re-export it without importing
# this module, which runpy then warns about when it runs it as ``__main__``.
from clients.margin_flow._cli import main

if __name__ == "__main__":
    sys.exit(main())
