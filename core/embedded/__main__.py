"""`python -m core.embedded KIND FOLDER`: the keeper process of one embedded server."""

import sys

from core.embedded.keeper import main

sys.exit(main())
