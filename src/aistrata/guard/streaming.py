"""Output guards on streamed answers, without holding the stream back.

Text is passed on as it comes, less a tail of `hold_chars` (64 by default) per choice,
kept back so a match that spans chunks (a card number split over three deltas) can still
be masked or blocked before any of it reaches the client. The tail grows only while it
may be part of a match: a span already found there, an unbroken key-like token, or a
private key block that has begun and not yet ended (bounded by `MAX_HOLD`). Checks that
judge a whole answer (leakage by overlap, JSON schema, groundedness, offensive language)
run when the choice finishes; a block then ends the stream with an error event.
"""

from __future__ import annotations

import re

from ..core import StreamEvent, StreamFinish, TextDelta, ThinkingDelta, ToolCallDelta
from .detectors.secrets import PRIVATE_KEY_BLOCK, PRIVATE_KEY_START
from .engine import Decisions, blocked, timed_scan
from .findings import Env, Finding, mask
from .policy import Policy, Rule

MAX_HOLD = 8192
_TAIL_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=.@]{12,}$")


class GuardStreamFilter:
    def __init__(self, policies: list[Policy], env: Env, decisions: Decisions) -> None:
        self.env = env
        self.decisions = decisions
        self.spans = [(p, r) for p in policies for r in p.rules if r.check.maskable]
        self.whole = [(p, r) for p in policies for r in p.rules if not r.check.maskable]
        self.hold = max(p.hold_chars for p in policies)
        heavy = any(getattr(r.check, "heavy", False) for _, r in self.spans)
        self.emit_at = self.hold * (4 if heavy else 1)  # heavy span checks (names) scan less often
        self.buffers: dict[int, str] = {}
        self.answers: dict[int, list[str]] = {}
        self.finished: set[int] = set()
        self.leaked = False

    def feed(self, event: StreamEvent) -> list[StreamEvent]:
        if isinstance(event, TextDelta):
            self.answers.setdefault(event.index, []).append(event.text)
            buf = self.buffers.get(event.index, "") + event.text
            if len(buf) <= self.emit_at:
                self.buffers[event.index] = buf
                return []
            emitted, self.buffers[event.index] = self._release(buf, final=False)
            return [TextDelta(emitted, event.index)] if emitted else []
        if isinstance(event, (ThinkingDelta, ToolCallDelta, StreamFinish)):
            out = self._flush(event.index)
            if isinstance(event, StreamFinish):
                self._judge_whole(event.index)
            return [*out, event]
        return [event]

    def end(self) -> list[StreamEvent]:
        out = [e for i in list(self.buffers) for e in self._flush(i)]
        for i in list(self.answers):
            self._judge_whole(i)
        return out

    def _flush(self, index: int) -> list[StreamEvent]:
        buf = self.buffers.pop(index, "")
        if not buf:
            return []
        emitted, _ = self._release(buf, final=True)
        return [TextDelta(emitted, index)] if emitted else []

    def _release(self, buf: str, final: bool) -> tuple[str, str]:
        """(masked text safe to send now, tail to keep); raises on a blocking finding."""
        if self.env.canary and self.env.canary in buf:
            self._block_leak()
        found: list[tuple[Policy, Rule, Finding]] = [
            (p, r, f) for p, r in self.spans for _, f in timed_scan(r, [buf], self.env)]
        cut = len(buf)
        if not final:
            cut = len(buf) - self.hold
            for _, _, f in found:
                if f.end > cut:
                    cut = min(cut, f.start)  # a match reaching into the tail may still grow
            for pending in (_tail(_TAIL_TOKEN.search(buf)), _open_private_key(buf)):
                if pending is not None:
                    cut = min(cut, pending)
            if len(buf) - cut > MAX_HOLD:
                cut = len(buf) - self.hold
            cut = max(cut, 0)
        done = [(p, r, f) for p, r, f in found if f.end <= cut]
        for p, r, _ in done:
            self.decisions.add(p.name, r.name, r.action, "output", 1)
        for p, r, _ in done:
            if r.action == "block":
                raise blocked(p.name, r.name, "output")
        masked = mask(buf[:cut], [f for _, r, f in done if r.action == "mask"])
        return masked, buf[cut:]

    def _judge_whole(self, index: int) -> None:
        if index in self.finished:
            return
        self.finished.add(index)
        text = "".join(self.answers.get(index, ()))
        for policy, rule in self.whole:
            found = timed_scan(rule, [text], self.env)
            if found:
                self.decisions.add(policy.name, rule.name, rule.action, "output", len(found))
                if rule.action == "block":
                    raise blocked(policy.name, rule.name, "output")

    def _block_leak(self) -> None:
        if self.leaked:
            return
        self.leaked = True
        for policy, rule in self.whole:
            if rule.name == "leakage":
                self.decisions.add(policy.name, rule.name, rule.action, "output", 1)
                if rule.action == "block":
                    raise blocked(policy.name, rule.name, "output")


def _open_private_key(buf: str) -> int | None:
    """Where the last private key block begins, while its END line has not fully arrived."""
    start = None
    for m in PRIVATE_KEY_START.finditer(buf):
        start = m.start()
    if start is not None and not PRIVATE_KEY_BLOCK.match(buf, start):
        return start
    return None


def _tail(m: re.Match[str] | None) -> int | None:
    return m.start() if m else None
