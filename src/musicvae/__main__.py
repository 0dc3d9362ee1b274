"""``python -m musicvae``: the ``musicvae`` command."""

import sys

from musicvae.cli.main import main

sys.exit(main())
