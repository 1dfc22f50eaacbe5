"""Rich progress bars for long stages, and a console shared by the CLI and the API.

Example:
    >>> with progress_bar("encoding", total=3, enabled=False) as advance:
    ...     for _ in range(3):
    ...         advance(1)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from sparsefit.interrupt import check as check_interrupt

# Wide enough for the results table when output goes to a file or CI log (rich would assume 80).
console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)


class Advance:
    """What :func:`progress_bar` yields: ``advance(n)`` counts ``n`` more done; ``advance.set_total(n)``
    changes the total (an estimate that improves as the work goes)."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress, self._task = progress, task

    def __call__(self, n: int) -> None:
        check_interrupt()
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def set_total(self, total: int | None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, total=total)


class RateColumn(ProgressColumn):
    """How many ``unit`` per second, over the last half minute."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None and task.finished and task.finished_time:  # rich drops its samples at the end
            speed = (task.completed - task.fields.get("completed_before", 0)) / task.finished_time
        return Text(f"{speed:,.0f} {self.unit}/s" if speed else f"- {self.unit}/s")


@contextmanager
def progress_bar(
    description: str, total: int | None, *, enabled: bool = True, unit: str | None = None, completed: int = 0
) -> Iterator[Advance]:
    """A progress bar on stderr; yields ``advance(n)``. Disabled, it only counts.

    ``total`` None: not known yet (see :meth:`Advance.set_total`); ``unit`` adds a "N unit/s" column;
    ``completed``: what was already done before (a resumed job), not counted in the rate.
    """
    if not enabled:
        yield Advance()
        return
    columns: list[ProgressColumn] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    if unit is not None:
        columns.insert(3, RateColumn(unit))
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total, completed=completed, completed_before=completed)
        yield Advance(progress, task)


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
