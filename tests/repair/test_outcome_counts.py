"""An outcome's counts and per-row results, read several times per report (issue 14):
computed at C speed, they must say what a row-by-row pass says."""

from __future__ import annotations

from vifdoctor.repair.apply import CHANGED, FAILED, PENDING, SKIPPED, Outcome


def _row_by_row(outcome: Outcome) -> dict:
    return {k: (v, outcome.current.get(k)) for k, v in outcome.status.items()}


def test_counts_and_results_as_row_by_row() -> None:
    states = [CHANGED, SKIPPED, CHANGED, FAILED, PENDING, CHANGED]
    outcome = Outcome(status={(f"p{n}", "h"): s for n, s in enumerate(states)})
    assert [outcome.count(s) for s in (CHANGED, SKIPPED, FAILED, PENDING)] == [3, 1, 1, 1]
    assert not outcome.all_changed()
    assert outcome.results() == _row_by_row(outcome)  # nothing re-read: None each
    outcome.current = {("p1", "h"): "other", ("p3", "h"): None}
    assert outcome.results() == _row_by_row(outcome)
    assert list(outcome.results()) == list(outcome.status)  # the plan's order kept


def test_all_changed() -> None:
    outcome = Outcome(status={(f"p{n}", "h"): CHANGED for n in range(3)})
    assert outcome.all_changed() and outcome.count(CHANGED) == 3
    assert Outcome().all_changed()  # nothing planned: nothing left to look at
