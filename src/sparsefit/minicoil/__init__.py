"""miniCOIL: BM25's exact matching and IDF, with "the word matches" made "the word matches in the same sense".

Each vocabulary word gets a tiny layer that turns its contextual embedding (from a small
sentence-transformers model) into a 4-d meaning, trained on the catalog alone; a product stores per
word its meaning times BM25's term-frequency part, a query its words' meanings, and Qdrant's IDF
modifier supplies IDF. Words without a layer match exactly, as in BM25. See docs/minicoil.md.

Example:
    >>> from sparsefit.minicoil import train_minicoil, load_minicoil, is_minicoil
    >>> model = train_minicoil(catalog.texts, cache_dir=Path("runs/x/cache"))     # doctest: +SKIP
    >>> model.save("runs/x/minicoil"); is_minicoil("runs/x/minicoil")              # doctest: +SKIP
    True
"""

from sparsefit.minicoil.explain import SharedWord
from sparsefit.minicoil.fit import FitSettings
from sparsefit.minicoil.layout import DIMENSION, Layout
from sparsefit.minicoil.model import MiniCoil, load_minicoil
from sparsefit.minicoil.store import is_minicoil
from sparsefit.minicoil.train import train_minicoil
from sparsefit.minicoil.words import Analyzer

__all__ = ["DIMENSION", "Analyzer", "FitSettings", "Layout", "MiniCoil", "SharedWord", "is_minicoil",
           "load_minicoil", "train_minicoil"]
