"""The one codec for a modal's ``private_metadata``: where to answer after the submission (a view
submission says neither channel nor thread) and what the modal is about.

Slack hands the text back as the bot wrote it, but it is still read as untrusted: anything that
is not the JSON object written here reads as empty fields, never as an error.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.slack.messenger import ReplyTo


class ModalMetadata(BaseModel):
    """What a modal carries. Short keys: ``private_metadata`` holds at most 3,000 characters."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    channel_id: str = Field("", alias="c")
    response_url: str | None = Field(None, alias="r")
    thread_ts: str | None = Field(None, alias="t")
    card_id: str = Field("", alias="card")  # the approval card a decline modal is about
    message_ts: str = Field("", alias="m")  # the message a link modal is about
    title: str = Field("", alias="d")  # a link's default title

    @classmethod
    def of(cls, reply: ReplyTo, **about: Any) -> ModalMetadata:
        """Where ``reply`` answers, and what the modal is about (``card_id``, ``message_ts``...)."""
        return cls(
            channel_id=reply.channel_id, response_url=reply.response_url, thread_ts=reply.thread_ts, **about
        )

    def encode(self) -> str:
        """As ``private_metadata``."""
        return json.dumps(self.model_dump(by_alias=True, exclude_defaults=True))

    @classmethod
    def decode(cls, text: object) -> ModalMetadata:
        """Read ``encode``'s text back; anything else reads as empty fields."""
        try:
            data = json.loads(text) if isinstance(text, str) and text else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        clean = {k: v for k, v in data.items() if isinstance(v, str)}
        try:
            return cls.model_validate(clean)
        except ValidationError:
            return cls()

    def reply(self, user_id: str) -> ReplyTo:
        """Where to answer ``user_id`` (the person who submitted: never taken from the metadata)."""
        return ReplyTo(self.channel_id, user_id, self.response_url or None, self.thread_ts or None)


def view_metadata(body: dict[str, Any]) -> str:
    """The ``private_metadata`` of the view a payload carries (a submission, a select's options
    request), or "" when there is none."""
    view = body.get("view")
    metadata = view.get("private_metadata") if isinstance(view, dict) else None
    return metadata if isinstance(metadata, str) else ""
