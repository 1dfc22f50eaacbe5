"""Label schemes: which labels a judgments file uses (ESCI, WANDS, graded numbers, binary) and the gain
each label gets. Detected from the labels themselves, forced by name, or given as gains.

Example:
    >>> scheme = detect_scheme(["E", "S", "I"])
    >>> scheme.name, scheme.gain("S")
    ('esci', 0.1)
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sparsefit.errors import SparsefitError

SCHEMES = ("esci", "wands", "graded", "binary")
ESCI_GAINS = {"exact": 1.0, "substitute": 0.1, "complement": 0.01, "irrelevant": 0.0}  # Amazon KDD Cup 2022
WANDS_GAINS = {"exact": 2.0, "partial": 1.0, "irrelevant": 0.0}
BINARY_GAINS = {"1": 1.0, "0": 0.0}
ALIASES = {
    "esci": {"e": "exact", "s": "substitute", "c": "complement", "i": "irrelevant"},
    "binary": {"true": "1", "yes": "1", "relevant": "1", "false": "0", "no": "0", "irrelevant": "0"},
}
_VOCAB = {
    "esci": set(ESCI_GAINS) | set(ALIASES["esci"]),
    "wands": set(WANDS_GAINS),
    "binary": set(BINARY_GAINS) | set(ALIASES["binary"]),
}
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?")
NONFINITE = {s + w for s in ("", "+", "-") for w in ("nan", "inf", "infinity")}
SKIP_HINT = "or pass --on-invalid skip to leave such rows out (they are counted)"
GAIN_EPS = 1e-9


def canonical_label(raw: str) -> str:
    """Label as compared: stripped, case-folded; numbers in one spelling ("2.0" -> "2", "1.50" -> "1.5").

    Example:
        >>> canonical_label(" Exact "), canonical_label("3.0"), canonical_label("2.33")
        ('exact', '3', '2.33')
    """
    text = " ".join(str(raw).split()).casefold()
    number = _number(text)
    if number is None:
        return text
    shown = repr(number)
    return shown[:-2] if shown.endswith(".0") else shown


def _number(text: str) -> float | None:
    if not _NUMBER_RE.fullmatch(text):
        return None
    value = float(text)
    return value + 0.0 if math.isfinite(value) else None  # + 0.0 turns -0.0 into 0.0


def format_number(x: float) -> str:
    return f"{x:.1f}" if round(x, 1) == x else f"{x:g}"


@dataclass
class LabelScheme:
    """How raw labels become gains, and which gain counts as relevant."""

    name: str  # "esci" | "wands" | "graded" | "binary" | "custom"
    gains: dict[str, float]  # categorical: canonical label -> gain; graded: empty (gain = label - low)
    relevant_threshold: float
    low: float | None = None
    high: float | None = None

    def gain(self, raw: str) -> float | None:
        """Gain of a raw label, or None if the label is not part of this scheme.

        Example:
            >>> detect_scheme(["1", "2.5", "3"]).gain("2.5")
            1.5
        """
        key = canonical_label(raw)
        if self.gains:
            return self.gains.get(ALIASES.get(self.name, {}).get(key, key))
        number = _number(key)
        if number is None or self.low is None:
            return None
        return number - self.low

    def top_gain(self) -> float:
        """The highest gain a label can have in this scheme."""
        if self.gains:
            return max(self.gains.values())
        return float((self.high if self.high is not None else 1.0) - (self.low or 0.0))

    def describe(self) -> str:
        """One line for people, e.g. ``graded 1.0–3.0 (gain = label − 1.0, relevant ≥ 1.0 gain)``."""
        relevant = f"relevant ≥ {format_number(self.relevant_threshold)} gain"
        if not self.gains:
            low, high = format_number(self.low or 0.0), format_number(self.high if self.high is not None else 0.0)
            return f"{self.name} {low}–{high} (gain = label − {low}, {relevant})"
        shown = ", ".join(f"{label}={gain:g}" for label, gain in self.gains.items())
        return f"{self.name} ({shown}; {relevant})"


class LabelProblem(Exception):
    """A label that makes the scheme impossible; turned into a SparsefitError with its row."""

    def __init__(self, label: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.label, self.message, self.hint = label, message, hint


def detect_scheme(values: Sequence[str]) -> LabelScheme:
    """The label scheme that fits all ``values`` (blank values are ignored).

    Example:
        >>> detect_scheme(["E", "S", "I"]).name, detect_scheme(["Exact", "Partial"]).name
        ('esci', 'wands')
        >>> s = detect_scheme(["1", "2.33", "3"]); (s.name, s.low, s.relevant_threshold)
        ('graded', 1.0, 1.0)
    """
    labels = [v for v in dict.fromkeys(str(v).strip() for v in values) if v]
    try:
        return build_scheme(labels, None, None, None)
    except LabelProblem as problem:
        raise SparsefitError(problem.message, hint=problem.hint) from None


def build_scheme(
    labels: list[str],
    forced: str | LabelScheme | None,
    gains: Mapping[str, float] | None,
    threshold: float | None,
) -> LabelScheme:
    """Scheme from the distinct raw labels (in first-seen order), ``scheme=``, ``gains=`` and threshold."""
    if isinstance(forced, LabelScheme):
        scheme = forced
    elif gains:
        scheme = _custom_scheme(labels, forced, gains)
    elif forced is not None:
        scheme = _forced_scheme(labels, forced)
    else:
        scheme = _detected_scheme(labels)
    if threshold is not None:
        if not math.isfinite(float(threshold)):
            raise LabelProblem("", f"relevant threshold {threshold} is not a finite number",
                                "pass a number to --relevant-threshold")
        scheme = dataclasses.replace(scheme, relevant_threshold=float(threshold))
    return scheme


def _detected_scheme(labels: list[str]) -> LabelScheme:
    canon = {label: canonical_label(label) for label in labels}
    numbers = {label: _number(c) for label, c in canon.items()}
    words = [label for label in labels if numbers[label] is None]
    values = set(canon.values())
    if not words:
        if values <= set(BINARY_GAINS):
            return LabelScheme("binary", dict(BINARY_GAINS), 1.0)
        return _graded(labels, numbers)
    if len(words) == len(labels):
        if values <= _VOCAB["wands"] and "partial" in values:
            return LabelScheme("wands", dict(WANDS_GAINS), 2.0)
        if values <= _VOCAB["esci"]:
            return LabelScheme("esci", dict(ESCI_GAINS), 1.0)
    if values <= _VOCAB["binary"]:
        return LabelScheme("binary", dict(BINARY_GAINS), 1.0)
    known = set().union(*_VOCAB.values())
    unknown = [label for label in words if canon[label] not in known]
    if len(words) < len(labels):
        odd = words[0] if len(words) <= len(labels) - len(words) else next(l for l in labels if l not in words)
        example = next(l for l in labels if (l in words) != (odd in words))
        raise LabelProblem(odd, f"label '{odd}' mixes {'words' if odd in words else 'numbers'} with "
                            f"{'numbers' if odd in words else 'words'} (e.g. '{example}')",
                            "use one kind of label, or map every label with --scheme and --gain LABEL=GAIN")
    if unknown:
        raise LabelProblem(unknown[0], f"label '{unknown[0]}' is not a known label (ESCI E/S/C/I or exact/substitute/"
                            "complement/irrelevant, WANDS Exact/Partial/Irrelevant, binary 0/1, or a number)",
                            "fix the label, or give every label a gain with --gain LABEL=GAIN")
    raise LabelProblem(words[0], f"labels mix schemes ({', '.join(labels[:6])})",
                        "use one label scheme, or give every label a gain with --gain LABEL=GAIN")


def _graded(labels: list[str], numbers: dict[str, float | None]) -> LabelScheme:
    low = min(v for v in numbers.values() if v is not None)
    high = max(v for v in numbers.values() if v is not None)
    if low < 0:
        negative = next(label for label in labels if numbers[label] == low)
        raise LabelProblem(negative, f"label '{negative}' is negative; graded labels must be 0 or more",
                            "map negative labels (e.g. TREC junk -2) to 0, or give gains with --gain LABEL=GAIN")
    if high == low:
        raise LabelProblem(labels[0], f"every label is '{labels[0]}', so graded gains (label − lowest label) would all be 0",
                            f"if they are all relevant, give them a gain: --gain {labels[0]}=1")
    return LabelScheme("graded", {}, (high - low) / 2, low=low, high=high)


def _forced_scheme(labels: list[str], name: str) -> LabelScheme:
    name = name.strip().casefold()
    if name == "graded":
        numbers = {label: _number(canonical_label(label)) for label in labels}
        words = [label for label in labels if numbers[label] is None]
        if len(words) == len(labels):
            raise LabelProblem(words[0], f"label '{words[0]}' is not a number, but --scheme graded needs numbers",
                                "fix the label or pick the matching --scheme")
        return _graded([label for label in labels if label not in words], numbers)
    if name == "esci":
        return LabelScheme("esci", dict(ESCI_GAINS), 1.0)
    if name == "wands":
        return LabelScheme("wands", dict(WANDS_GAINS), 2.0)
    if name == "binary":
        return LabelScheme("binary", dict(BINARY_GAINS), 1.0)
    raise LabelProblem("", f"unknown label scheme '{name}'", f"pass --scheme with one of: {', '.join(SCHEMES)}")


def _custom_scheme(labels: list[str], forced: str | None, gains: Mapping[str, float]) -> LabelScheme:
    if forced is not None:
        name = _forced_scheme([], forced).name if forced.strip().casefold() != "graded" else "graded"
    else:
        try:
            name = _detected_scheme(labels).name
        except LabelProblem:
            name = "custom"
    aliases = ALIASES.get(name, {})
    mapped: dict[str, float] = {}
    for label, gain in gains.items():
        try:
            value = float(gain)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise LabelProblem("", f"gain of label '{label}' is '{gain}', not a finite number",
                                "write gains as LABEL=NUMBER, e.g. --gain E=1")
        key = canonical_label(label)
        mapped[aliases.get(key, key)] = value
    return LabelScheme(name, mapped, max(mapped.values()))


# -- the judgments --------------------------------------------------------------------------------
