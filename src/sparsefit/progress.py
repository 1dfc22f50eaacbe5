"""Rich progress bars for long stages, and a console shared by the CLI and the API.

Example:
    >>> with progress_bar("encoding", total=3, enabled=False) as advance:
    ...     for _ in range(3):
    ...         advance(1)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# Wide enough for the results table when output goes to a file or CI log (rich would assume 80).
console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)


@contextmanager
def progress_bar(description: str, total: int, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields ``advance(n)``. Disabled, it only counts."""
    if not enabled:
        yield lambda n: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence transformers / sentence-transformers chatter (init warnings, deprecation notes, tqdm bars)
    while we load, train or save; our own progress bars and messages say what happens."""
    from transformers.utils import logging as hf_logging

    st_logger = logging.getLogger("sentence_transformers")
    st_level, hf_level = st_logger.level, hf_logging.get_verbosity()
    st_logger.setLevel(logging.ERROR)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        st_logger.setLevel(st_level)
        hf_logging.set_verbosity(hf_level)
        hf_logging.enable_progress_bar()
