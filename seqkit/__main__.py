"""``python -m seqkit`` runs the CLI (also what ``accelerate launch -m seqkit`` needs)."""

import sys

from seqkit.cli import main

sys.exit(main())
