"""``python -m lgrec`` = the ``lgrec`` command (torchrun starts lgrec's processes this way)."""

import sys

from lgrec.cli import main

sys.exit(main())
