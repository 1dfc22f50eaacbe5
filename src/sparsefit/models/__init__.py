"""Base models and sparse encoders."""

from __future__ import annotations

from sparsefit.models.aliases import ALIASES, OfflineModel
from sparsefit.models.encoder import ARCHITECTURES, Encoder, average_encoders, init_lexical_head, load_encoder

__all__ = ["ALIASES", "ARCHITECTURES", "Encoder", "average_encoders", "OfflineModel", "init_lexical_head", "load_encoder"]
