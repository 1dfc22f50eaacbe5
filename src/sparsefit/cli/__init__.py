"""The ``sparsefit`` command line: a thin typer layer over the Python API.

Every :class:`~sparsefit.errors.SparsefitError` and every usage error (unknown command or option, a
bad or missing value) becomes one line on stderr and exit code 2, never a traceback. ``--help`` and
``--version`` exit 0; ``sparsefit`` alone (or a command group alone, ``sparsefit rules``) prints the
help and exits 2, as a command line without a command is a usage error.

Example:
    $ sparsefit evaluate examples/catalog.csv --judgments examples/judged_queries.csv

The package: :mod:`~sparsefit.cli.root` holds the typer ``app`` and :func:`main`; each command module
registers its commands on ``app`` when imported. They are imported below in the order ``sparsefit --help``
lists the commands (typer keeps the order of registration; the ``rules`` group comes after the commands).
"""

from __future__ import annotations

from importlib import import_module

from sparsefit.cli.root import app, main

__all__ = ["app", "main"]

# The modules that register commands on ``app`` when imported, in the order of ``sparsefit --help``
# (imported by name, in this order, so that no import sorter can reorder the help).
COMMAND_MODULES = ("evaluate", "train", "queries", "index", "search", "explain", "export", "publish", "info", "serve", "rules", "calibrate")
for _name in COMMAND_MODULES:
    import_module(f"{__name__}.{_name}")
del _name
