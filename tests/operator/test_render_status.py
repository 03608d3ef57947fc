"""Conditions: Ready derivation, stable transition times, Programmed counting."""

from __future__ import annotations

import pytest

from asbru_operator.probe import parse_readyz
from asbru_operator.render import status
from asbru_operator.render.status import Check, PodReport


def test_ready_is_true_only_when_all_checks_are() -> None:
    ok = {"Accepted": Check(True, "Accepted"), "ResolvedRefs": Check(True, "ResolvedRefs")}
    ready = status.conditions_for(ok, generation=3, now="t1")[-1]
    assert (ready["type"], ready["status"], ready["observedGeneration"]) == ("Ready", "True", 3)
    bad = {**ok, "ResolvedRefs": Check(False, "SecretNotFound", "Secret 'x' not found")}
    ready = status.conditions_for(bad, generation=3, now="t1")[-1]
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")
    assert "Secret 'x'" in ready["message"]


def test_transition_time_kept_while_status_unchanged() -> None:
    checks = {"Accepted": Check(True, "Accepted")}
    first = status.conditions_for(checks, generation=1, now="t1")
    second = status.conditions_for(checks, generation=1, previous=first, now="t2")
    assert second == first
    assert not status.status_changed({"conditions": first}, {"conditions": second})
    flipped = status.conditions_for(
        {"Accepted": Check(False, "Invalid")}, generation=1, previous=first, now="t3"
    )
    assert flipped[0]["lastTransitionTime"] == "t3"


def test_programmed_counts_pods_on_the_revision() -> None:
    reports = [PodReport("a", "r2"), PodReport("b", "r1"), PodReport("c"), PodReport("d", "r2")]
    count, check = status.programmed_check(revision="r2", desired=3, reports=reports)
    assert count == 2 and check.ok is False
    assert (check.reason, check.message) == ("Pending", "2 of 3 pods run revision r2")
    count, check = status.programmed_check(revision="r2", desired=2, reports=[PodReport("a", "r2")] * 2)
    assert check.ok is True


def test_programmed_says_which_pods_refuse_the_revision_and_why() -> None:
    reports = [
        PodReport("gw-a", "r2"),
        PodReport("gw-b", "r1", rejected_revision="r2", rejected_reason="providers.0.pool: bad"),
        PodReport("gw-c", "r1", rejected_revision="r2", rejected_reason="providers.0.pool: bad"),
        PodReport("gw-d", "r2", rejected_revision="r0", rejected_reason="an older refusal, not this one"),
    ]
    count, check = status.programmed_check(revision="r2", desired=2, reports=reports)
    assert (count, check.ok, check.reason) == (2, False, "Rejected")
    assert check.message == "2 of 2 pods run revision r2; gw-b, gw-c refuse it: providers.0.pool: bad"
    _, check = status.programmed_check(
        revision="r2", desired=1, reports=[PodReport("p", rejected_revision="r2", rejected_reason="x" * 1000)]
    )
    assert len(check.message) < 400


@pytest.mark.parametrize(
    ("answer", "report"),
    [
        (
            {"status": "ready", "revision": "r1", "schema": {"version": "v", "minor": 3}},
            PodReport("p", "r1", schema_minor=3),
        ),
        ({"status": "ready", "revision": "r1"}, PodReport("p", "r1", schema_minor=0)),  # an older gateway
        (
            {
                "status": "starting",
                "revision": None,
                "schema": {"minor": 1},
                "rejected": {"revision": "r2", "reason": "no"},
            },
            PodReport("p", None, schema_minor=1, rejected_revision="r2", rejected_reason="no"),
        ),
        ({"status": "draining", "revision": "r1"}, PodReport("p", None, schema_minor=0)),
        ("not json we know", PodReport("p")),
        ({"status": "ready", "revision": "r1", "schema": {"minor": "1"}}, PodReport("p", "r1")),
    ],
)
def test_readiness_answers_become_reports(answer: object, report: PodReport) -> None:
    assert parse_readyz("p", answer) == report
