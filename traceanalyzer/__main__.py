"""``python -m traceanalyzer`` = the ``traceanalyzer`` command."""

import sys

from traceanalyzer.cli.main import main

sys.exit(main())
