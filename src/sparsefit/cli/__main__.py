"""``python -m sparsefit.cli``: the same as the ``sparsefit`` command (the tests start the CLI this way)."""

from sparsefit.cli import main

main()
