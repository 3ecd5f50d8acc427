"""`python -m lmeec.cli …` runs the `lmeec` command."""

import sys

from lmeec.cli.main import main

sys.exit(main())
