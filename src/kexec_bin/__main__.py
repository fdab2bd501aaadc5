"""`python -m kexec_bin` is `kexec-bin`."""

import sys

from .cli import main

sys.exit(main())
