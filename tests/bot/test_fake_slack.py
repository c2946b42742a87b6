"""The fake Slack Web API, driven through slack_sdk's real AsyncWebClient over loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.offline.fake_slack import FakeSlack, check_blocks
from bot.slack.client import make_slack_client
from tests.servers import serve_asgi

TOKEN = "xoxb-test-token"

CARD: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*new-checkout* on in test"}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "`/flag on new-checkout test`"}]},
    {
        "type": "actions",
        "block_id": "card",
        "elements": [
            {"type": "button", "action_id": "change_apply", "text": {"type": "plain_text", "text": "Apply"}},
            {
                "type": "button",
                "action_id": "change_cancel",
                "text": {"type": "plain_text", "text": "Cancel"},
            },
        ],
    },
]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack(tokens={TOKEN})
    with serve_asgi(slack.app) as url:
        slack.base_url = url
        yield slack


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    settings = Settings(
        _env_file=None,
        slack_bot_token=TOKEN,
        slack_signing_secret="s",
        ld_api_token="api",
        slack_api_url=f"{fake.base_url}/api",
    )
    return make_slack_client(settings)


async def test_post_card_then_thread_reply(fake: FakeSlack, client: AsyncWebClient) -> None:
    card = await client.chat_postMessage(channel="C_RELEASES", text="card", blocks=CARD)
    reply = await client.chat_postMessage(channel="C_RELEASES", text="applied", thread_ts=card["ts"])
    assert [m.ts for m in fake.messages("C_RELEASES")] == [card["ts"]]
    assert [m.text for m in fake.thread("C_RELEASES", card["ts"])] == ["applied"]
    assert float(reply["ts"]) > float(card["ts"])
    last = fake.last_card("C_RELEASES")
    assert last is not None and [b["text"]["text"] for b in last.buttons] == ["Apply", "Cancel"]
    [call, _] = fake.calls_to("chat.postMessage")
    assert call.token == TOKEN and call.params["blocks"] == CARD and call.ok


async def test_unknown_thread_is_refused(fake: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C_RELEASES", text="x", thread_ts="1234.5678")
    assert caught.value.response["error"] == "invalid_thread_ts"
    assert fake.messages("C_RELEASES") == []


async def test_private_channel_without_the_bot(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.make_private("G_SECRET")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="G_SECRET", text="card")
    assert caught.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as info:
        await client.conversations_info(channel="G_SECRET")
    assert info.value.response["error"] == "channel_not_found"
    assert (await client.conversations_info(channel="C_RELEASES"))["channel"]["is_member"] is True


@pytest.mark.parametrize(
    "blocks",
    [
        [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
        [{"type": "section", "text": "a bare string is not a text object"}],
        [{"type": "sektion", "text": {"type": "mrkdwn", "text": "typo"}}],
        [{"type": "section", "text": {"type": "mrkdwn", "text": "ok"}, "colour": "red"}],
        [
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}],
            }
        ],
        [{"type": "divider"}] * 51,
    ],
    ids=["long-section", "bare-text", "unknown-type", "unknown-field", "long-button", "51-blocks"],
)
async def test_invalid_blocks_are_refused(fake: FakeSlack, client: AsyncWebClient, blocks: Any) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C_RELEASES", text="x", blocks=blocks)
    assert caught.value.response["error"] == "invalid_blocks"
    assert caught.value.response["errors"]
    assert fake.messages("C_RELEASES") == []


def test_valid_blocks_pass_unchanged() -> None:
    assert check_blocks(CARD) == CARD


async def test_no_text(fake: FakeSlack) -> None:
    async with httpx.AsyncClient(base_url=f"{fake.base_url}/api") as http:
        answer = await http.post(
            "/chat.postMessage", json={"channel": "C_RELEASES"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert answer.json() == {"ok": False, "error": "no_text"}


async def test_update_and_permalink(fake: FakeSlack, client: AsyncWebClient) -> None:
    card = await client.chat_postMessage(channel="C_RELEASES", text="card", blocks=CARD)
    await client.chat_update(channel="C_RELEASES", ts=card["ts"], text="Applying…", blocks=CARD[:1])
    [message] = fake.messages("C_RELEASES")
    assert (message.text, message.buttons, message.edits) == ("Applying…", [], 1)
    link = await client.chat_getPermalink(channel="C_RELEASES", message_ts=card["ts"])
    assert card["ts"].replace(".", "") in link["permalink"]
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel="C_RELEASES", ts="1.000001", text="x")
    assert caught.value.response["error"] == "message_not_found"


async def test_ephemerals_show_only_in_existing_threads(fake: FakeSlack, client: AsyncWebClient) -> None:
    card = await client.chat_postMessage(channel="C_RELEASES", text="card")
    await client.chat_postEphemeral(channel="C_RELEASES", user="U_BOB", text="only alice can apply this")
    await client.chat_postEphemeral(channel="C_RELEASES", user="U_BOB", text="lost", thread_ts=card["ts"])
    await client.chat_postMessage(channel="C_RELEASES", text="reply", thread_ts=card["ts"])
    await client.chat_postEphemeral(channel="C_RELEASES", user="U_BOB", text="shown", thread_ts=card["ts"])
    assert [e.text for e in fake.ephemerals("U_BOB")] == ["only alice can apply this", "shown"]
    assert fake.ephemerals("U_ALICE") == []


async def test_users_auth_and_unknown_methods(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_user("U_DAVE", "dave", email="dave@example.com", tz="Asia/Kolkata", tz_offset=19800)
    user = (await client.users_info(user="U_DAVE"))["user"]
    assert (user["profile"]["email"], user["tz"], user["tz_offset"]) == (
        "dave@example.com",
        "Asia/Kolkata",
        19800,
    )
    alice = (await client.users_info(user="U_ALICE"))["user"]
    assert alice["profile"]["email"] == "alice@example.com"
    with pytest.raises(SlackApiError) as missing:
        await client.users_info(user="U_NOBODY")
    assert missing.value.response["error"] == "user_not_found"
    me = await client.auth_test()
    assert (me["user_id"], me["bot_id"], me["team_id"]) == ("U_FLAGOPS", "B_FLAGOPS", "T_DEMO")
    with pytest.raises(SlackApiError) as unknown:
        await client.api_call("chat.scheduleMessage", json={"channel": "C1", "text": "x", "post_at": 1})
    assert unknown.value.response["error"] == "unknown_method"


async def test_bad_token(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as caught:
        await AsyncWebClient(token="xoxb-wrong", base_url=f"{fake.base_url}/api/").auth_test()
    assert caught.value.response["error"] == "invalid_auth"
    assert fake.calls[-1].token == "xoxb-wrong"


async def test_views(fake: FakeSlack, client: AsyncWebClient) -> None:
    modal = {
        "type": "modal",
        "callback_id": "change_comment",
        "title": {"type": "plain_text", "text": "Comment"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Why?"}}],
    }
    opened = await client.views_open(trigger_id="T1", view=modal)
    view_id = opened["view"]["id"]
    await client.views_update(
        view_id=view_id, view={**modal, "title": {"type": "plain_text", "text": "Again"}}
    )
    assert fake.views()[view_id]["title"]["text"] == "Again"
    with pytest.raises(SlackApiError) as too_long:
        await client.views_open(
            trigger_id="T2", view={**modal, "title": {"type": "plain_text", "text": "t" * 25}}
        )
    assert too_long.value.response["error"] == "invalid_arguments"
    await client.views_publish(user_id="U_ALICE", view={"type": "home", "blocks": modal["blocks"]})
    home = fake.home("U_ALICE")
    assert home is not None and home["type"] == "home"


async def test_rate_limit_next_calls_is_waited_out(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.rate_limit("chat.postMessage", next=1, retry_after=0)
    started = time.monotonic()
    posted = await client.chat_postMessage(channel="C_RELEASES", text="eventually")
    assert posted["ok"] and time.monotonic() - started < 5
    calls = fake.calls_to("chat.postMessage")
    assert [c.error for c in calls] == ["ratelimited", None]


async def test_rate_limit_every_nth_call(fake: FakeSlack) -> None:
    fake.rate_limit(every=2, retry_after=7)
    async with httpx.AsyncClient(base_url=f"{fake.base_url}/api") as http:
        answers = [
            await http.post("/auth.test", headers={"Authorization": f"Bearer {TOKEN}"}) for _ in range(4)
        ]
    assert [a.status_code for a in answers] == [200, 429, 200, 429]
    assert answers[1].headers["Retry-After"] == "7" and answers[1].json()["error"] == "ratelimited"


async def test_form_encoded_calls_are_understood(fake: FakeSlack) -> None:
    async with httpx.AsyncClient(base_url=f"{fake.base_url}/api") as http:
        answer = await http.post(
            "/chat.postMessage",
            data={"token": TOKEN, "channel": "C_RELEASES", "text": "form", "blocks": '[{"type": "divider"}]'},
        )
    assert answer.json()["ok"] is True
    assert fake.calls[-1].token == TOKEN and fake.calls[-1].params["blocks"] == [{"type": "divider"}]


async def test_response_url(fake: FakeSlack, client: AsyncWebClient) -> None:
    card = await client.chat_postMessage(channel="C_RELEASES", text="card", blocks=CARD)
    usage = fake.new_response_url("C_RELEASES", "U_ALICE")
    clicked = fake.new_response_url("C_RELEASES", "U_ALICE", message_ts=card["ts"])
    async with httpx.AsyncClient() as http:
        assert (await http.post(usage, json={"text": "Usage: /flag on FLAG ENV"})).status_code == 200
        assert (
            await http.post(clicked, json={"replace_original": True, "text": "Cancelled"})
        ).status_code == 200
        assert (
            await http.post(clicked, json={"response_type": "in_channel", "text": "hi all"})
        ).status_code == 200
        for _ in range(4):
            await http.post(usage, json={"text": "again"})
        assert (await http.post(usage, json={"text": "sixth"})).status_code == 404
    assert [e.text for e in fake.ephemerals("U_ALICE")][:1] == ["Usage: /flag on FLAG ENV"]
    assert fake.ephemerals("U_ALICE")[0].via == "response_url"
    assert [m.text for m in fake.messages("C_RELEASES")] == ["Cancelled", "hi all"]
    assert [r.accepted for r in fake.responses] == [True] * 7 + [False]
