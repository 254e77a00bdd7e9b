"""``python -m ragged.trace``: summarize or draw a trace file (see :func:`ragged.trace.main`)."""

import sys

from . import main

sys.exit(main())
