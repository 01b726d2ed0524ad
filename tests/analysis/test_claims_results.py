"""The claims about results quoted from papers: each computed from its table, checked by hand here."""
from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.analysis.claims import RESULTS_TOPICS, all_claims, check_claims, normalize_whitespace
from cnnlab.analysis.claims.results import ILSVRC_2012_TOP5

SEEDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "seeds"

# ILSVRC-2012 top-5 error as the CS231n case studies give it: AlexNet 16%, the runner-up 26%.
_MARGIN = 26 - 16
EXPECTED = {
    "ilsvrc2012-margin": _MARGIN,
    "ilsvrc2012-relative-reduction": 100 * _MARGIN / 26,
}


def test_the_module_registers_exactly_these_claims():
    modules = {topic.__name__ for topic in RESULTS_TOPICS}
    assert [c.id for c in all_claims() if c.compute.__module__ in modules] == list(EXPECTED)


@pytest.mark.parametrize("claim_id", sorted(EXPECTED))
def test_computed_from_the_table_equals_the_hand_calculation(claim_id):
    [result] = check_claims([claim_id])
    assert result.verdict != "error", result.reason
    assert result.computed == pytest.approx(EXPECTED[claim_id], rel=1e-12)


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"the seed files are not here ({SEEDS}): no ../shared checkout")
@pytest.mark.parametrize("row", ILSVRC_2012_TOP5, ids=lambda row: row[0])
def test_every_row_of_the_table_is_quoted_from_its_seed(row):
    entry, error, source, quote = row
    text = normalize_whitespace((SEEDS / source).read_text(encoding="utf-8"))
    assert normalize_whitespace(quote) in text
    assert f"{error:g}%" in quote, f"{entry}: the quote does not state {error:g}%"
