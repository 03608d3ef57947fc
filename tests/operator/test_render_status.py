"""Conditions: Ready derivation, stable transition times, Programmed counting."""

from __future__ import annotations

from asbru_operator.render import status
from asbru_operator.render.status import Check


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
    count, check = status.programmed_check(revision="r2", desired=3, served=["r2", "r1", None, "r2"])
    assert count == 2 and check.ok is False
    assert check.message == "2 of 3 pods run revision r2"
    count, check = status.programmed_check(revision="r2", desired=2, served=["r2", "r2"])
    assert check.ok is True
