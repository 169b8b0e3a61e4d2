"""``python -m lgrec.cli``: the ``lgrec`` command."""

import sys

from lgrec.cli import main

sys.exit(main())
