"""A miniCOIL model folder: fastembed's file names for the parts fastembed reads, one JSON for the rest.

Why fastembed's names: ``minicoil.triplet.model.npy`` (the layers, ``(words + 1, hidden, dims)``, row 0
for fastembed's "unknown" id), ``minicoil.triplet.model.vocab`` (``{"vocab": [word, ...],
"stem_mapping": {stem: word}}``) and ``stopwords.txt`` are what fastembed's ``MiniCOIL`` loads, so the
vocabulary and layers are readable as Qdrant's own. ``minicoil.json`` is sparsefit's marker: the
settings (analyzer, BM25 ``k``/``b``/``avg_len``, the encoder by name), the training record and the
training catalog's document frequencies (for IDF in explanations). Writes are atomic (the folder).

Example:
    >>> import tempfile
    >>> is_minicoil(tempfile.mkdtemp())
    False
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sparsefit.errors import SparsefitError
from sparsefit.files import atomic_folder, read_json

MARKER = "minicoil.json"
WEIGHTS = "minicoil.triplet.model.npy"
VOCAB = "minicoil.triplet.model.vocab"
STOPWORDS = "stopwords.txt"
FORMAT = 1


def is_minicoil(folder: str | Path) -> bool:
    """True for a folder written by :func:`save_minicoil` (it has the marker file)."""
    return (Path(folder) / MARKER).is_file()


def save_minicoil(model, folder: str | Path) -> Path:  # model: MiniCoil (not imported: the model imports us lazily)
    """Write ``model`` to ``folder``, replacing what is there in one atomic swap."""
    folder = Path(folder)
    words = [model.display(stem) for stem in model.stems]
    with atomic_folder(folder) as temporary:
        np.save(temporary / WEIGHTS, np.ascontiguousarray(model.weights, dtype=np.float32))
        vocab = {"vocab": words, "stem_mapping": dict(zip(model.stems, words)), "stems": model.stems}
        (temporary / VOCAB).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (temporary / STOPWORDS).write_text("\n".join(sorted(model.analyzer.stopwords)) + "\n", encoding="utf-8")
        meta = {"format": FORMAT, "name": model.name, "encoder": model.encoder, "sentence_model": model.sentence_model,
                "dims": model.dims, "hidden_size": model.hidden_size, "words": len(model.stems),
                "analyzer": model.analyzer.to_json(), "bm25": {"k": model.k, "b": model.b, "avg_len": model.avg_len},
                "max_seq_length": model.max_seq_length, "modifier": "idf", "training": model.training,
                "document_count": model.document_count, "frequencies": model.frequencies, "forms": model.forms}
        (temporary / MARKER).write_text(json.dumps(meta, ensure_ascii=False, allow_nan=False), encoding="utf-8")
    return folder


def load_minicoil(folder: str | Path):
    """The :class:`~sparsefit.minicoil.model.MiniCoil` in ``folder``; a clear error if it is not one or is damaged."""
    from sparsefit.minicoil.model import MiniCoil
    from sparsefit.minicoil.words import Analyzer

    folder = Path(folder)
    if not is_minicoil(folder):
        raise SparsefitError(f"not a miniCOIL model folder (no {MARKER})", file=folder,
                             hint="train one with train_minicoil / --model-type minicoil, or give the right folder")
    meta = read_json(folder / MARKER)
    try:
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, this sparsefit reads {FORMAT}")
        weights = np.load(folder / WEIGHTS)
        stems = json.loads((folder / VOCAB).read_text(encoding="utf-8"))["stems"]
        stopwords = (folder / STOPWORDS).read_text(encoding="utf-8").split()
        bm25 = meta["bm25"]
        return MiniCoil(weights, list(stems), Analyzer.from_saved(meta["analyzer"], stopwords), meta["encoder"],
                        meta["sentence_model"], k=float(bm25["k"]), b=float(bm25["b"]), avg_len=float(bm25["avg_len"]),
                        max_seq_length=int(meta["max_seq_length"]), document_count=int(meta["document_count"]),
                        frequencies=dict(meta["frequencies"]), forms=dict(meta["forms"]),
                        training=dict(meta["training"]), name=str(meta["name"]))
    except SparsefitError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SparsefitError(f"the miniCOIL model is damaged ({type(exc).__name__}: {str(exc)[:160]})", file=folder,
                             hint="train it again") from None
