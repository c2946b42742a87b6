"""The one ``private_metadata`` codec: what a modal carries comes back as written, and anything
else (not JSON, not an object, wrong types, huge) reads as empty fields, never as an error."""

from __future__ import annotations

import pytest

from bot.slack.messenger import ReplyTo
from bot.slack.metadata import ModalMetadata


def test_what_a_modal_carries_comes_back() -> None:
    reply = ReplyTo("C1", "U_ALICE", "https://hooks.slack.com/x", "1.2")
    text = ModalMetadata.of(reply, card_id="card-1").encode()
    read = ModalMetadata.decode(text)
    assert read.card_id == "card-1"
    # The person answered is whoever submitted, never a user the metadata names.
    assert read.reply("U_BOB") == ReplyTo("C1", "U_BOB", "https://hooks.slack.com/x", "1.2")
    assert len(text) < 3000


@pytest.mark.parametrize(
    "text",
    [None, "", "not json", "[1]", "null", '{"c": 5, "card": ["x"]}', '{"c": {"id": "C1"}}', "{" * 5000, 7],
)
def test_anything_else_reads_as_empty_fields(text: object) -> None:
    read = ModalMetadata.decode(text)
    assert read.channel_id == "" and read.card_id == "" and read.response_url is None
    assert read.reply("U_BOB").user_id == "U_BOB"
