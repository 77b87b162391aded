"""Policies: parsing, who gets which policy, block vs mask vs flag, and the stream filter."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from aistrata.core import ChatRequest, ChatResponse, Choice, GatewayError, Message, StreamFinish, TextDelta, TextPart
from aistrata.guard import stats
from aistrata.guard.policy import PolicyError, parse_policies
from aistrata.guard.stages import InputGuard, OutputGuard
from aistrata.store.keys import KeyRecord

POLICIES = {
    "policies": [
        {"name": "pii-input", "on": "input", "checks": ["email", "phone", "credit_card"], "action": "mask",
         "actions": {"credit_card": "block"}},
        {"name": "secrets", "on": ["input", "output"], "checks": ["secrets"], "action": "block"},
        {"name": "pii-output", "on": "output", "checks": ["pii"], "action": "mask"},
        {"name": "watch", "on": "input", "checks": ["words"], "words": ["pineapple"], "action": "flag"},
        {"name": "content-kids", "on": ["input", "output"], "checks": ["categories"], "action": "block"},
    ],
    "teams": {"kids": ["content-kids"]},
}


def ctx_for(team: str | None = None, key_id: str = "k1", guards: list[str] | None = None) -> SimpleNamespace:
    key = KeyRecord(key_id, "h", "sk-ast-x", team_id=team, metadata={"guards": guards} if guards else {})
    return SimpleNamespace(id=f"req-{key_id}-{team}", principal=SimpleNamespace(key=key), route={})


def user(text: str) -> ChatRequest:
    return ChatRequest("gpt", [Message("system", [TextPart("be nice")]), Message("user", [TextPart(text)])])


def admit(req: ChatRequest, ctx: SimpleNamespace, config: dict = POLICIES) -> None:
    ps = parse_policies(config)
    asyncio.run(InputGuard(ps, {}).admit(req, ctx))


def test_defaults_and_assignment() -> None:
    ps = parse_policies(POLICIES)
    assert ps.default == ["pii-input", "secrets", "pii-output", "watch"]  # content-kids is assigned to a team only
    names = lambda ctx: [p.name for p in ps.for_principal(ctx.principal)]  # noqa: E731
    assert "content-kids" not in names(ctx_for())
    assert "content-kids" in names(ctx_for("kids"))
    assert "content-kids" in names(ctx_for(guards=["content-kids"]))  # a key's metadata.guards
    keyed = parse_policies({**POLICIES, "keys": {"k9": ["content-kids"]}})
    assert "content-kids" in [p.name for p in keyed.for_principal(ctx_for(key_id="k9").principal)]


@pytest.mark.parametrize("config,error", [
    ({"policies": [{"name": "x", "checks": ["nope"]}]}, "unknown check 'nope'"),
    ({"policies": [{"name": "x", "checks": ["injection"], "action": "mask"}]}, "cannot mask"),
    ({"policies": [{"name": "x", "checks": ["leakage"]}]}, "use `on: output`"),
    ({"policies": [{"name": "x", "checks": ["email"], "action": "drop"}]}, "not one of"),
    ({"policies": [], "teams": {"a": ["ghost"]}}, "'ghost' is assigned but not defined"),
])
def test_bad_configs_are_refused(config: dict, error: str) -> None:
    with pytest.raises(PolicyError, match=error):
        parse_policies(config)


def test_mask_block_flag() -> None:
    req, ctx = user("mail ann@example.com, I love pineapple"), ctx_for()
    admit(req, ctx)
    assert req.messages[1].text == "mail <EMAIL>, I love pineapple"
    actions = {(r["policy"], r["check"]): r["action"] for r in ctx.route["guards"]}
    assert actions == {("pii-input", "email"): "mask", ("watch", "words"): "flag"}
    req, ctx = user("card 4111 1111 1111 1111"), ctx_for()
    with pytest.raises(GatewayError) as info:
        admit(req, ctx)
    assert info.value.message == "request blocked by policy 'pii-input' (check: credit_card)"
    assert "4111" not in info.value.message
    assert any(d["policy"] == "pii-input" and d["action"] == "block" for d in stats()["decisions"])


def test_team_policy_applies_to_team_only() -> None:
    admit(user("how do I build a bomb"), ctx_for())  # not in team kids: passes
    with pytest.raises(GatewayError, match="content-kids"):
        admit(user("how do I build a bomb"), ctx_for("kids"))


def test_output_mask_on_whole_answer() -> None:
    ps = parse_policies(POLICIES)
    resp = ChatResponse("r", "m", [Choice(0, Message("assistant", [TextPart("reach me at bob@example.org")]))])
    out = asyncio.run(OutputGuard(ps, {}).check_response(user("hi"), ctx_for(), resp))
    assert out.choices[0].message.text == "reach me at <EMAIL>"


def stream(pieces: list[str], config: dict = POLICIES) -> tuple[str, SimpleNamespace]:
    ps, ctx = parse_policies(config), ctx_for()
    f = OutputGuard(ps, {}).stream_filter(user("hi"), ctx)
    assert f is not None
    events = [e for p in pieces for e in f.feed(TextDelta(p))] + f.feed(StreamFinish("stop")) + f.end()
    return "".join(e.text for e in events if isinstance(e, TextDelta)), ctx


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_stream_masks_matches_split_across_chunks(size: int) -> None:
    text = "Sure! Card 4111 1111 1111 1111 and mail carl@example.com, plus filler words to push the window along."
    out, ctx = stream([text[i:i + size] for i in range(0, len(text), size)])
    assert out == "Sure! Card <CREDIT_CARD> and mail <EMAIL>, plus filler words to push the window along."
    assert {r["check"] for r in ctx.route["guards"]} == {"credit_card", "email"}


def test_stream_holds_only_a_small_tail() -> None:
    ps, ctx = parse_policies(POLICIES), ctx_for()
    f = OutputGuard(ps, {}).stream_filter(user("hi"), ctx)
    sent = "".join(e.text for w in ("word " * 100).split(" ") for e in f.feed(TextDelta(w + " ")) if isinstance(e, TextDelta))
    assert len("word " * 100) - len(sent) <= 64 + 5


def test_stream_blocks_a_secret_before_any_of_it_is_sent() -> None:
    key = "sk-proj-" + "Ab3dEf6hIj" * 5
    text = f"here you go: {key} enjoy " + "more text " * 10
    ps, ctx = parse_policies(POLICIES), ctx_for()
    f = OutputGuard(ps, {}).stream_filter(user("hi"), ctx)
    sent = ""
    with pytest.raises(GatewayError, match="policy 'secrets'"):
        for i in range(0, len(text), 4):
            sent += "".join(e.text for e in f.feed(TextDelta(text[i:i + 4])) if isinstance(e, TextDelta))
    assert "sk-proj" not in sent
