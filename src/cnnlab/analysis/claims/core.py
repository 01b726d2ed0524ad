"""The claims' registry and verdicts: what a claim is, how it is checked, how it is shown.

A :class:`Claim` is one number a lecture states: the words, the seed file and an exact
quote it comes from, the lecture's value with a stated tolerance, and a zero-argument
function that computes the same quantity from cnnlab's code. The topic modules of this
package register their claims with the :func:`claim` decorator when they are imported;
:func:`check_claims` runs them and says, for each, whether the lecture's number *agrees*
with what the code computes or *differs*, and why (:func:`evaluate`).

This module owns the registry, the verdict arithmetic, the way values are written
(:func:`format_value`) and the names of the seed files the quotes come from. It imports
none of the topic modules, so they can all import it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ...errors import unknown_name

# The seed files (the project's specification, in ../shared/seeds) the quotes come from.
REFERENCES = "000_7cd15f83d1038256.txt"  # reference list with the CS231n case-study numbers
LESSON = "001_c5b7ade6371c8d23.txt"  # long-form lesson "Training CNNs & the Architecture Revolution"
PRACTICE = "002_bce842e4950f4d57.txt"  # practice questions and answers
SLIDES_2025 = "003_d8a3acbf288f8711.txt"  # CS231n 2025 lecture 6 slides
SLIDES_2019 = "004_cd051ca725a1dddb.txt"  # CS231n 2019 lecture 9 slides (CNN architectures)

Value = Any  # int | float | tuple of numbers (a shape such as 55x55x96)


@dataclass(frozen=True)
class Claim:
    """One number a lecture states, where it says it, and how cnnlab computes it.

    ``lecture_value`` is a number, or a tuple of numbers for a shape (``(55, 55, 96)``
    for "55x55x96", compared element by element). ``tolerance`` is relative: the claim
    agrees when ``|computed - lecture| <= tolerance * |lecture|``; it is chosen per claim
    from how the lecture rounds ("35K" is good to 5%, an exact "1,728" gets 0).
    ``lecture_text`` is the number as the lecture writes it; ``method`` says which model
    or module the number is computed from; ``note`` says why the tolerance is what it
    is; ``explanation`` says why the lecture's number differs, shown when it does.
    """

    id: str
    text: str
    source: str
    quote: str
    lecture_value: Value
    unit: str
    tolerance: float
    compute: Callable[[], Value] = field(repr=False, compare=False)
    lecture_text: str = ""
    method: str = ""
    note: str = ""
    explanation: str = ""

    def __post_init__(self) -> None:
        if self.tolerance < 0:
            raise ValueError(f"claim {self.id}: tolerance must be >= 0, got {self.tolerance}")
        if not self.quote.strip():
            raise ValueError(f"claim {self.id}: the quote must not be empty")
        if not self.lecture_text:
            object.__setattr__(self, "lecture_text", format_value(self.lecture_value, self.unit))


@dataclass(frozen=True)
class ClaimResult:
    """A claim checked: its fields, the computed value, the verdict and the reason."""

    id: str
    text: str
    source: str
    quote: str
    lecture_value: Value
    lecture_text: str
    unit: str
    tolerance: float
    method: str
    note: str
    explanation: str
    computed: Value
    verdict: str  # "agrees", "differs", or "error" (the compute function failed)
    reason: str
    relative_difference: float | None

    def to_dict(self) -> dict:
        """JSON-ready form (``cnnlab claims --json``); shapes become lists."""
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "quote": self.quote,
            "lecture_value": _jsonable(self.lecture_value),
            "lecture_text": self.lecture_text,
            "computed": _jsonable(self.computed),
            "unit": self.unit,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
            "reason": self.reason,
            "relative_difference": self.relative_difference,
            "method": self.method,
            "note": self.note,
            "explanation": self.explanation,
        }


_REGISTRY: dict[str, Claim] = {}


def register_claim(item: Claim) -> Claim:
    """Add a claim to the registry (ids are unique)."""
    if item.id in _REGISTRY:
        raise RuntimeError(f"claim {item.id!r} registered twice")
    _REGISTRY[item.id] = item
    return item


def claim(*, id: str, text: str, source: str, quote: str, lecture_value: Value, unit: str,
          tolerance: float, lecture_text: str = "", method: str = "", note: str = "",
          explanation: str = "") -> Callable[[Callable[[], Value]], Callable[[], Value]]:
    """Decorator: register the decorated zero-argument function as the claim's computation."""

    def decorate(compute: Callable[[], Value]) -> Callable[[], Value]:
        register_claim(Claim(id=id, text=text, source=source, quote=quote, lecture_value=lecture_value,
                             unit=unit, tolerance=tolerance, compute=compute,
                             lecture_text=lecture_text, method=method,
                             note=note, explanation=explanation))
        return compute

    return decorate


def claims_of_one_number(compute: Callable[[], Value], statements: Sequence[dict], **shared) -> None:
    """Register several lectures' statements of the same quantity, all checked against one computation.

    Each statement gives a claim's own fields (id, text, source, quote, lecture value,
    tolerance, ...); ``shared`` the fields they have in common (unit, method, ...).
    """
    for statement in statements:
        claim(**shared, **statement)(compute)


def all_claims() -> list[Claim]:
    """Every registered claim, in registration order.

    Importing the package ``cnnlab.analysis.claims`` imports every topic module, and with
    them every claim, before any function here can be called.
    """
    return list(_REGISTRY.values())


def get_claim(claim_id: str) -> Claim:
    """The claim registered under ``claim_id``; unknown ids get the closest matches."""
    try:
        return _REGISTRY[claim_id]
    except KeyError:
        raise unknown_name("claim", claim_id, _REGISTRY,
                           f"Run `cnnlab claims` to list all {len(_REGISTRY)} claims.") from None


def check_claims(ids: Sequence[str] | None = None) -> list[ClaimResult]:
    """Compute every claim (or those in ``ids``) and compare with the lecture's value."""
    claims = all_claims() if ids is None else [get_claim(i) for i in ids]
    return [evaluate(c) for c in claims]


def evaluate(item: Claim) -> ClaimResult:
    """Run one claim's computation and give its verdict and reason."""
    try:
        computed = item.compute()
    except Exception as error:  # one broken claim must not hide the others' verdicts
        return _result(item, None, "error", f"could not compute: {type(error).__name__}: {error}", None)
    agrees = _agrees(computed, item.lecture_value, item.tolerance)
    shown = f"computed {format_value(computed, item.unit)} vs lecture {item.lecture_text}"
    rel = _relative_difference(computed, item.lecture_value)
    if agrees:
        if item.tolerance == 0:
            reason = f"exact: {shown}"
        else:
            reason = f"within {_percent(item.tolerance)}: {shown}"
        if item.note:
            reason += f" ({item.note})"
        return _result(item, computed, "agrees", reason, rel)
    if rel is not None:
        shown += f" ({rel:+.1%})"
    reason = f"{shown}: {item.explanation}" if item.explanation else shown
    return _result(item, computed, "differs", reason, rel)


def claims_table_rows(results: Sequence[ClaimResult]) -> list[tuple[str, str, str, str, str, str]]:
    """Rows ``(id, lecture, computed, unit, verdict, reason)`` for a plain-text table."""
    return [(r.id, r.lecture_text, format_value(r.computed, r.unit), r.unit, r.verdict, r.reason) for r in results]


def normalize_whitespace(text: str) -> str:
    """Collapse every run of whitespace (line breaks of the PDF text included) to one space."""
    return " ".join(text.split())


def format_value(value: Value, unit: str = "") -> str:
    """A number as a person reads it: ``34,848``, ``8.697``; a shape ``55x55x96``.

    Tuples are joined with "x" when ``unit`` names a shape (``HxWxC``), else with ", ".
    """
    if value is None:
        return "-"
    if isinstance(value, (tuple, list)):
        shape = "HxW" in unit or " x " in unit
        return ("x" if shape else ", ").join(format_value(v).replace(",", "") for v in value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.4g}"


# --- verdict arithmetic ---------------------------------------------------------------

def _agrees(computed: Value, lecture: Value, tolerance: float) -> bool:
    if isinstance(lecture, (tuple, list)):
        if not isinstance(computed, (tuple, list)) or len(computed) != len(lecture):
            return False
        return all(_agrees(c, v, tolerance) for c, v in zip(computed, lecture))
    if isinstance(computed, (tuple, list)):
        return False
    return abs(computed - lecture) <= tolerance * abs(lecture)


def _relative_difference(computed: Value, lecture: Value) -> float | None:
    # Only for single numbers with a non-zero lecture value: shapes are compared per axis.
    if isinstance(computed, (tuple, list)) or isinstance(lecture, (tuple, list)) or lecture == 0:
        return None
    return (computed - lecture) / abs(lecture)


def _percent(tolerance: float) -> str:
    return f"{tolerance * 100:.3g}%"


def _jsonable(value: Value) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _result(item: Claim, computed: Value, verdict: str, reason: str, rel: float | None) -> ClaimResult:
    return ClaimResult(
        id=item.id, text=item.text, source=item.source, quote=item.quote, lecture_value=item.lecture_value,
        lecture_text=item.lecture_text, unit=item.unit, tolerance=item.tolerance, method=item.method,
        note=item.note, explanation=item.explanation, computed=computed, verdict=verdict, reason=reason,
        relative_difference=rel,
    )
