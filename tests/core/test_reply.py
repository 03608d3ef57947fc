"""``Reply``: bytes and data derived from each other on demand, and sized without serialising."""

from __future__ import annotations

from asbru_gateway.core.reply import Reply


def test_body_size_of_a_pass_through_answer_is_its_length() -> None:
    assert Reply(b'{"id":"x"}').body_size() == 10


def test_body_size_never_serialises_a_translated_answer() -> None:
    reply = Reply(data={"id": "x"})
    assert reply.body_size() == 0
    assert reply.body_size() == 0  # still not serialised by the first call
    assert reply.body == b'{"id":"x"}'  # serialised on first read, as before
    assert reply.body_size() == 10
