"""Claims about results the lectures quote from papers: ILSVRC-2012's margin, computed from its table.

:data:`ILSVRC_2012_TOP5` is the table the statements rest on, each row with the words of
the seed that gives it (a test checks that every row's quote is in its seed and states
its number); the claims compute the margin in points and as a share of the baseline
from the rows, not from the lecture's result.
"""
from __future__ import annotations

from .core import PRACTICE, REFERENCES, claim

# ILSVRC-2012 classification, top-5 error (%), as the CS231n case studies quote it:
# entry, error, source, quote.
ILSVRC_2012_TOP5 = (
    ("AlexNet", 16.0, REFERENCES, "AlexNet’s “16% [top-5 error] compared to runner-up with 26% error”"),
    ("runner-up", 26.0, REFERENCES, "AlexNet’s “16% [top-5 error] compared to runner-up with 26% error”"),
)


def ilsvrc_2012_error(entry: str) -> float:
    """The top-5 error (%) of an ILSVRC-2012 entry in :data:`ILSVRC_2012_TOP5`."""
    return next(error for name, error, _, _ in ILSVRC_2012_TOP5 if name == entry)


def ilsvrc_2012_margin() -> float:
    """AlexNet's margin over the runner-up, in top-5 error points."""
    return ilsvrc_2012_error("runner-up") - ilsvrc_2012_error("AlexNet")


_LESSON_NOTE = ("from the case studies' rounded 16% and 26%; the lesson's table gives AlexNet's five-CNN entry "
                "as 16.4%, a slightly smaller margin")


@claim(id="ilsvrc2012-margin", text="AlexNet beat the ILSVRC-2012 runner-up by 10 points of top-5 error",
       source=PRACTICE, quote="a 10-percentage-point top-5-error margin (16 percent vs 26 percent)",
       lecture_value=10, lecture_text="10 points", unit="top-5 error points", tolerance=0, note=_LESSON_NOTE,
       method="ILSVRC_2012_TOP5: the runner-up's top-5 error - AlexNet's")
def _ilsvrc2012_margin():
    return ilsvrc_2012_margin()


@claim(id="ilsvrc2012-relative-reduction", text="That margin is about a 38% relative reduction of the error",
       source=PRACTICE, quote="10 / 26 ≈ 38 percent relative reduction in top-5 error", lecture_value=38,
       lecture_text="≈ 38%", unit="% of the runner-up's error", tolerance=0.5 / 38,
       note="right if the share rounds to 38%; " + _LESSON_NOTE,
       method="ILSVRC_2012_TOP5: 100 x margin / the runner-up's top-5 error")
def _ilsvrc2012_relative_reduction():
    return 100 * ilsvrc_2012_margin() / ilsvrc_2012_error("runner-up")
