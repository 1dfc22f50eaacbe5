"""``python -m sparsefit``: the same as the ``sparsefit`` command."""

from sparsefit.cli import main

main()
