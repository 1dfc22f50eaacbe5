"""The domains file of a multi-domain run (``sparsefit train --domains domains.yaml``): which catalogs
one model is trained on, each with its judgments (or generated queries), column options and weight.

::

    temperature: 2            # optional: batches per domain ∝ weight · rows^(1/temperature)
    domains:
      - name: homedepot
        catalog: ../shared/data/homedepot/products.csv
        judgments: ../shared/data/homedepot/judgments.csv
      - name: cranfield
        catalog: ../shared/data/cranfield/documents.csv
        judgments: ../shared/data/cranfield/judgments.csv
        text_fields: [text]   # any data option of the settings, for this domain only
        weight: 1.0

Relative paths are read from the domains file's folder. A domain without ``judgments`` trains on
queries generated from its catalog.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("c.csv", "d.csv"): _ = (folder / name).write_text("id,title\\n1,drill\\n")
    >>> _ = (folder / "d.yaml").write_text("domains:\\n  - {name: shop, catalog: c.csv}\\n  - {name: docs, catalog: d.csv}\\n")
    >>> [d.name for d in load_domains(folder / "d.yaml").domains]
    ['shop', 'docs']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sparsefit.domain_batches import DEFAULT_TEMPERATURE
from sparsefit.errors import SparsefitError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Settings a domain may set for itself: how its files are read and its queries made, never how the model trains.
DOMAIN_SETTINGS = frozenset({
    "id_field", "text_fields", "template", "encoding", "on_invalid", "query_field", "judgment_id_field", "label_field",
    "label_scheme", "gains", "relevant_threshold", "on_unknown_product", "on_conflict", "test_fraction", "test_judgments",
    "split_file", "positive_min_gain", "mined_positive_min_gain", "queries_per_product", "query_products",
    "train_products", "llm_url", "llm_model",
})
PATH_SETTINGS = ("test_judgments", "split_file")


@dataclass(frozen=True)
class Domain:
    """One catalog of a multi-domain run."""

    name: str
    catalog: Path
    judgments: Path | None = None
    weight: float = 1.0
    settings: dict[str, Any] = field(default_factory=dict)  # this domain's data options (DOMAIN_SETTINGS)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "catalog": str(self.catalog), "judgments": str(self.judgments) if self.judgments else None,
                "weight": self.weight, "settings": {k: str(v) if isinstance(v, Path) else v for k, v in self.settings.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Domain:
        settings = {k: Path(v) if k in PATH_SETTINGS and v is not None else v for k, v in data.get("settings", {}).items()}
        return cls(data["name"], Path(data["catalog"]), Path(data["judgments"]) if data.get("judgments") else None,
                   float(data.get("weight", 1.0)), settings)


@dataclass(frozen=True)
class Domains:
    domains: list[Domain]
    temperature: float = DEFAULT_TEMPERATURE

    def as_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "domains": [d.as_dict() for d in self.domains]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Domains:
        return cls([Domain.from_dict(d) for d in data["domains"]], float(data.get("temperature", DEFAULT_TEMPERATURE)))


def load_domains(path: str | Path) -> Domains:
    """Read and check a domains file: every problem is one clear error naming the file, the domain and the key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SparsefitError("the domains file does not exist", file=path, hint="pass a YAML file with a `domains:` list") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SparsefitError(f"the domains file cannot be read as YAML ({first})", file=path) from None
    example = "domains: [{name: shop, catalog: products.csv, judgments: judgments.csv}, ...]"
    if not isinstance(data, dict) or not isinstance(data.get("domains"), list) or not data["domains"]:
        raise SparsefitError("the domains file needs a non-empty `domains:` list", file=path, hint=f"write {example}")
    unknown = set(data) - {"domains", "temperature"}
    if unknown:
        raise SparsefitError(f"unknown top-level key(s) {', '.join(sorted(unknown))}", file=path,
                             hint="only `domains:` and `temperature:` belong at the top; training settings go on the command line")
    temperature = data.get("temperature", DEFAULT_TEMPERATURE)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
        raise SparsefitError(f"temperature must be a number above 0, not {temperature!r}", file=path, column="temperature",
                             hint="1: batches proportional to size, 2: square root (default), large: uniform")
    domains = [_domain(entry, i, path) for i, entry in enumerate(data["domains"], start=1)]
    names = [d.name for d in domains]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise SparsefitError(f"two domains are named {duplicate!r}", file=path, hint="give every domain its own name")
    return Domains(domains, float(temperature))


def _domain(entry: Any, number: int, path: Path) -> Domain:
    where = f"domain {number}"
    if not isinstance(entry, dict):
        raise SparsefitError(f"{where} is not a mapping", file=path, hint="write `- {name: shop, catalog: products.csv}`")
    for key in ("name", "catalog"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise SparsefitError(f"{where} has no `{key}`", file=path, column=key, hint="every domain needs a name and a catalog")
    name = entry["name"]
    if not NAME.fullmatch(name):
        raise SparsefitError(f"{where}'s name {name!r} is not a folder name", file=path, column="name",
                             hint="use letters, digits, '-', '_' and '.' (it names the domain's folder in the run)")
    where = f"domain {name!r}"
    unknown = set(entry) - {"name", "catalog", "judgments", "weight"} - DOMAIN_SETTINGS
    if unknown:
        raise SparsefitError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}", file=path,
                             hint="a domain takes name, catalog, judgments, weight and data options such as "
                                  "text_fields, id_field, label_field, test_fraction")
    weight = entry.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
        raise SparsefitError(f"{where}'s weight must be a number above 0, not {weight!r}", file=path, column="weight")
    judgments = entry.get("judgments")
    if judgments is not None and not isinstance(judgments, str):
        raise SparsefitError(f"{where}'s judgments must be a file path", file=path, column="judgments")
    settings = {k: v for k, v in entry.items() if k in DOMAIN_SETTINGS}
    for key in PATH_SETTINGS:
        if settings.get(key) is not None:
            settings[key] = _resolve(settings[key], path)
    _check_settings(settings, where, path)
    catalog = _resolve(entry["catalog"], path)
    if not catalog.exists():
        raise SparsefitError(f"{where}'s catalog {catalog} does not exist", file=path, column="catalog",
                             hint="paths are read from the domains file's folder")
    resolved_judgments = _resolve(judgments, path) if judgments else None
    if resolved_judgments is not None and not resolved_judgments.exists():
        raise SparsefitError(f"{where}'s judgments {resolved_judgments} do not exist", file=path, column="judgments",
                             hint="paths are read from the domains file's folder; leave judgments out to generate queries")
    return Domain(name, catalog, resolved_judgments, float(weight), settings)


def _resolve(value: str | Path, path: Path) -> Path:
    value = Path(value).expanduser()
    return (value if value.is_absolute() else path.parent / value).resolve()


def _check_settings(settings: dict[str, Any], where: str, path: Path) -> None:
    """Type-check a domain's options with the settings' own fields (their bounds and choices)."""
    from pydantic import ValidationError

    from sparsefit.config import Settings

    for key, value in settings.items():
        try:
            Settings.__pydantic_validator__.validate_assignment(Settings.model_construct(), key, value)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise SparsefitError(f"{where}'s {key} is invalid: {message}", file=path, column=key) from None
