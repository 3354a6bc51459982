"""``python -m vifdoctor``."""

import sys

from vifdoctor.cmd.main import main

sys.exit(main())
