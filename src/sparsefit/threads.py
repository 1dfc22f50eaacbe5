"""How many CPU threads this process uses: torch's pools and the tokenizers' Rust pool, from one setting.

Example:
    >>> apply_threads(None)   # None (or 0) changes nothing
"""

from __future__ import annotations

import os
from typing import Any

_interop_threads_set = False


def apply_threads(settings: Any) -> None:
    """Limit this process to ``settings.threads`` CPU threads (an int works too; None changes nothing).

    torch: ``set_num_threads`` (intra-op, OpenMP/MKL), and ``set_num_interop_threads`` when torch still
    allows it (only once, and only before its first parallel work; later calls keep the current pool).
    The tokenizers' Rust (rayon) pool: ``RAYON_NUM_THREADS``, which rayon reads once, when the pool is
    first used; so it holds if this runs before the first tokenizer batch of the process (load_settings
    runs first in every command). It replaces a ``RAYON_NUM_THREADS`` already set.
    """
    global _interop_threads_set
    threads = settings if settings is None or isinstance(settings, int) else settings.threads
    if not threads:
        return
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if not _interop_threads_set:
        _interop_threads_set = True
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # parallel work has started (or someone set it): the pool stays as it is
            pass
