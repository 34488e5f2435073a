"""``python -m bridge`` runs the command line, as the ``bridge`` console script does."""

from bridge.cli import main

raise SystemExit(main())
