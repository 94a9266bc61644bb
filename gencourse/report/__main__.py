"""``python -m gencourse.report``: the scoreboard's command line (:mod:`gencourse.report.cli`)."""

import sys

from gencourse.report.cli import main

sys.exit(main())
