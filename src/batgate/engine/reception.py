"""Where inbound messages come in (SPEC §10–§11): the carriers' `InboundSink`.

For each message a carrier brings: who owns its recipient (`batgate accounts
add-number`; none: unrouted, kept for the operator), whether its whole text is an
opt-out or opt-in keyword (the sender's suppression for that account changes), and
the account's auto-reply for that keyword, if it has one. Then store.inbound keeps
it all in one transaction — the message, its webhook event, the opt-out, the
auto-reply as a message to send — before the carrier is answered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from batgate.config import Settings
from batgate.domain.inbound import Arrival, InboundText, e164_of, spellings
from batgate.domain.messages import NewMessage
from batgate.domain.optout import Keyword, keyword_of
from batgate.domain.records import Account
from batgate.domain.validation import Limits, validate_message
from batgate.observability import metrics
from batgate.store.manager import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AutoReplies:
    """An account's answers to its opt-out and opt-in keywords (None: no answer)."""

    opt_out: str | None = None
    opt_in: str | None = None

    def text(self, keyword: Keyword) -> str | None:
        return self.opt_out if keyword is Keyword.OPT_OUT else self.opt_in


@dataclass(frozen=True, slots=True)
class InboundPolicy:
    reply_window: float = 7 * 86_400  # seconds `inReplyTo` looks back
    keywords: bool = True  # opt-out/opt-in keywords change the suppression list
    replies: Mapping[str, AutoReplies] = field(default_factory=dict)  # by username, "*"
    limits: Limits = field(default_factory=Limits)


def inbound_policy(settings: Settings) -> InboundPolicy:
    """The policy `[inbound]` and `[accounts.NAME]` set."""
    replies = {
        name: AutoReplies(a.opt_out_reply, a.opt_in_reply)
        for name, a in settings.accounts.items()
        if a.opt_out_reply or a.opt_in_reply
    }
    return InboundPolicy(
        reply_window=settings.inbound.reply_window_days * 86_400,
        keywords=settings.inbound.keywords,
        replies=replies,
        limits=Limits(max_parts=settings.max_parts, default_ttl=settings.default_ttl),
    )


class Reception:
    def __init__(
        self,
        store: Store,
        policy: InboundPolicy | None = None,
        on_events: Callable[[], None] = lambda: None,
        on_replies: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._policy = policy or InboundPolicy()
        self._on_events = on_events
        self._on_replies = on_replies
        self._clock = clock

    async def inbound(self, connector: str, messages: Sequence[InboundText]) -> None:
        """Store them, all or none (raises when they could not be stored)."""
        if not messages:
            return
        now = self._clock()
        owners = await self._owners(messages)
        arrivals = [self._arrival(connector, m, owners.get(m.recipient), now) for m in messages]
        stored = await self._store.inbox.receive(arrivals, now, now - self._policy.reply_window)
        for m in stored:
            metrics.inbound_messages(connector, "routed" if m.account_id else "unrouted").inc()
        if any(m.account_id is not None for m in stored):
            self._on_events()
        if any(a.reply is not None for a in arrivals):
            self._on_replies()

    async def _owners(self, messages: Sequence[InboundText]) -> dict[str, Account]:
        """The owning account of each recipient that has one, by recipient."""
        recipients = {m.recipient for m in messages}
        numbers = await self._store.inbox.owners({s for r in recipients for s in spellings(r)})
        accounts = await self._store.accounts_by_ids(set(numbers.values()))
        owned: dict[str, Account] = {}
        for recipient in recipients:
            for spelling in spellings(recipient):
                account = accounts.get(numbers.get(spelling, -1))
                if account is not None:
                    owned[recipient] = account
                    break
        return owned

    def _arrival(
        self, connector: str, m: InboundText, account: Account | None, now: float
    ) -> Arrival:
        if account is None:
            return Arrival(connector, m)
        keyword = keyword_of(m.text) if self._policy.keywords else None
        reply = None if keyword is None else self._reply(account, keyword, m, now)
        return Arrival(connector, m, account, keyword, reply)

    def _reply(
        self, account: Account, keyword: Keyword, m: InboundText, now: float
    ) -> NewMessage | None:
        replies = self._policy.replies
        text = (replies.get(account.username) or replies.get("*") or AutoReplies()).text(keyword)
        to = e164_of(m.sender)
        if text is None or to is None:
            return None
        raw = {"type": "sms", "from": m.recipient, "to": to, "text": text}
        reply = validate_message(raw, self._policy.limits, now)
        if not isinstance(reply, NewMessage):
            log.warning(
                "no auto-reply to %s for account %s: %s", to, account.username, reply.message
            )
            return None
        return reply
