"""Table definitions (SQLAlchemy Core). The Alembic migrations create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("webhook_url", sa.String(2048), nullable=True),
    sa.Column("webhook_secret", sa.String(128), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("webhook_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("webhook_disabled_reason", sa.Text, nullable=True),
    # During a secret rotation the old secret signs too, until `previous_secret_until`.
    sa.Column("previous_webhook_secret", sa.String(128), nullable=True),
    sa.Column("previous_secret_until", sa.Float, nullable=True),
    # Its own rate limit (migration 0019); NULL: the gateway's `rate_limit.*`.
    sa.Column("rate_limit", sa.Float, nullable=True),
    sa.Column("rate_burst", sa.Integer, nullable=True),
)

# Ids that grow with traffic: 64-bit on PostgreSQL (an `integer` runs out after about
# two billion). SQLite's INTEGER PRIMARY KEY is 64-bit already, and must stay that type
# to be the rowid that numbers new rows (migration 0007).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

messagelists = sa.Table(
    "messagelists",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("message_count", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("messagelist_id", BigId, nullable=False),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("customer_message_id", sa.String(64), nullable=True),
    sa.Column("recipient", sa.String(16), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("chain", sa.Text, nullable=False),  # JSON list of steps
    sa.Column("callback_url", sa.String(2048), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("steps", sa.Text, nullable=False),  # comma-separated channel statuses
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("due_at", sa.Float, nullable=True),
    sa.Column("deadline", sa.Float, nullable=False),
    sa.Column("receipt", sa.String(16), nullable=True),
    sa.Column("carrier_ref", sa.String(64), nullable=True),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("claimed_until", sa.Float, nullable=True),
    sa.Column("rate_micros", sa.BigInteger, nullable=True),
    sa.Column("rate_currency", sa.String(3), nullable=True),
    sa.Column("bill_micros", sa.BigInteger, nullable=True),
    sa.Column("bill_currency", sa.String(3), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # Claims after a lease ran out (each may re-send an unrecorded hand-over).
    sa.Column("reclaims", sa.Integer, nullable=False, server_default="0"),
    # When retention blanked its text and messageData (store.retention).
    sa.Column("redacted_at", sa.Float, nullable=True),
    # The status document (domain.documents), written with every change: a lookup reads
    # it as it is. NULL only on rows older than migration 0009 (built when read).
    sa.Column("status_doc", sa.Text, nullable=True),
    # The connector that took the current step (migration 0018; the console's counts).
    sa.Column("connector", sa.String(32), nullable=True),
)
# Only messages the engine still has to look at carry a due time; final ones leave the index.
sa.Index(
    "ix_messages_due",
    messages.c.due_at,
    sqlite_where=messages.c.due_at.is_not(None),
    postgresql_where=messages.c.due_at.is_not(None),
)
sa.Index("ix_messages_messagelist", messages.c.messagelist_id, messages.c.id)
# A recipient's messages by time: an inbound reply's `inReplyTo` (the account's latest
# message to that number), and the operator's search by recipient (migration 0017).
sa.Index("ix_messages_recipient", messages.c.recipient, messages.c.created_at)
# The newest messages first: the console's search without a recipient or list (0018).
sa.Index("ix_messages_created", messages.c.created_at)
# Final messages by age, for retention: all of them (purge), and those not yet redacted.
sa.Index(
    "ix_messages_final",
    messages.c.updated_at,
    sqlite_where=messages.c.due_at.is_(None),
    postgresql_where=messages.c.due_at.is_(None),
)
sa.Index(
    "ix_messages_unredacted",
    messages.c.updated_at,
    sqlite_where=messages.c.due_at.is_(None) & messages.c.redacted_at.is_(None),
    postgresql_where=messages.c.due_at.is_(None) & messages.c.redacted_at.is_(None),
)
sa.Index(
    "ix_messages_carrier_ref",
    messages.c.carrier_ref,
    sqlite_where=messages.c.carrier_ref.is_not(None),
    postgresql_where=messages.c.carrier_ref.is_not(None),
)

# The parts a carrier took for a hand-over, by the carrier's id of each part, and the
# receipt each part got: a receipt names a part, the hand-over ends when its parts do.
carrier_parts = sa.Table(
    "carrier_parts",
    metadata,
    sa.Column("connector", sa.String(32), primary_key=True),
    sa.Column("smsc_id", sa.String(65), primary_key=True),
    sa.Column("message_id", sa.String(32), nullable=False),
    sa.Column("carrier_ref", sa.String(64), nullable=False),
    sa.Column("parts", sa.Integer, nullable=False),  # of the whole hand-over
    sa.Column("status", sa.String(16), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)
sa.Index("ix_carrier_parts_ref", carrier_parts.c.carrier_ref)

# Receipts that came before their part was recorded (before the submit's answer, or
# before the dispatcher wrote the hand-over): stored, acknowledged, matched later.
carrier_receipts = sa.Table(
    "carrier_receipts",
    metadata,
    sa.Column("connector", sa.String(32), primary_key=True),
    sa.Column("smsc_id", sa.String(65), primary_key=True),
    sa.Column("aliases", sa.String(200), nullable=False),  # space-separated
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    # What the carrier said of a part it did not deliver (migration 0015).
    sa.Column("detail", sa.String(200), nullable=True),
)
sa.Index("ix_carrier_receipts_received", carrier_receipts.c.received_at)

# Every status a message entered, in order: the history, and the webhook outbox.
# `state`: none (no webhook to send), pending, delivered, failed.
message_events = sa.Table(
    "message_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(32), nullable=False),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("url", sa.String(2048), nullable=True),  # a per-message callbackUrl
    sa.Column("state", sa.String(16), nullable=False, server_default="none"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=True),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("claimed_until", sa.Float, nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("delivered_at", sa.Float, nullable=True),
    # Why a message ended as it did (for its final status): what the carrier said, a
    # timeout, the TTL (domain.lifecycle.Note).
    sa.Column("reason", sa.Text, nullable=True),
    # The event's own webhook-id where it is not a status's (an inbound message's
    # `in_{inboundId}`: its `message_id` is then the order it keeps, domain.inbound).
    sa.Column("webhook_id", sa.String(64), nullable=True),
)
sa.Index("ix_message_events_message", message_events.c.message_id)
sa.Index("ix_message_events_at", message_events.c.at)
sa.Index(
    "ix_message_events_pending_by_message",
    message_events.c.message_id,
    message_events.c.id,
    sqlite_where=message_events.c.state == "pending",
    postgresql_where=message_events.c.state == "pending",
)
sa.Index(
    "ix_message_events_pending",
    message_events.c.next_attempt_at,
    sqlite_where=message_events.c.state == "pending",
    postgresql_where=message_events.c.state == "pending",
)

# The rest of a message's story: why an attempt failed or a step ended (a fallback).
message_notes = sa.Table(
    "message_notes",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(32), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)
sa.Index("ix_message_notes_message", message_notes.c.message_id)
sa.Index("ix_message_notes_at", message_notes.c.at)

# Every attempt to deliver a webhook event: when, how long, what came back.
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", BigId, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)
sa.Index("ix_webhook_attempts_event", webhook_attempts.c.event_id)
sa.Index("ix_webhook_attempts_at", webhook_attempts.c.at)

rates = sa.Table(
    "rates",
    metadata,
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("prefix", sa.String(15), primary_key=True),
    sa.Column("micros", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# A send request's Idempotency-Key: a retried request gets the first answer again.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("response", sa.Text, nullable=False),  # "" until the API kept its answer
    sa.Column("created_at", sa.Float, nullable=False),
    # What the key stored: its message list, and its messages' ids as a JSON list.
    sa.Column("messagelist_id", BigId, nullable=True),
    sa.Column("message_ids", sa.Text, nullable=True),
)
sa.Index("ix_idempotency_keys_created", idempotency_keys.c.created_at)

# The per-account rate limit's token buckets, shared by every API process.
rate_buckets = sa.Table(
    "rate_buckets",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("stamp", sa.Float, nullable=False),
)

# The operator's switch per connector (`batgate connectors drain NAME` / `enable NAME`):
# every process reads it every few seconds (docs/carriers.md).
connector_switches = sa.Table(
    "connector_switches",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("drained", sa.Boolean, nullable=False),
    sa.Column("changed_at", sa.Float, nullable=False),
)

# What each process's engine sees of each connector, written every few seconds and
# read by `batgate connectors`; rows of a process that stopped reporting age out.
connector_reports = sa.Table(
    "connector_reports",
    metadata,
    sa.Column("connector", sa.String(32), primary_key=True),
    sa.Column("worker", sa.String(128), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("links", sa.Integer, nullable=True),
    sa.Column("in_flight", sa.Integer, nullable=False),
    sa.Column("sent_minute", sa.Integer, nullable=False),
    sa.Column("errors_minute", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_at", sa.Float, nullable=True),
    sa.Column("reported_at", sa.Float, nullable=False),
)

# What a carrier charged for a step of a message (an SMSBAT upstream's billAmount),
# beside the customer's price on the message: the margin per message.
carrier_costs = sa.Table(
    "carrier_costs",
    metadata,
    sa.Column("message_id", sa.String(32), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("connector", sa.String(32), nullable=False),
    sa.Column("micros", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

# The batches handed to an SMSBAT upstream, written before they are sent: after a
# crash, a message taken back is sent again in its batch, with the batch's key and
# body, so an upstream that honours Idempotency-Key answers it without a second copy.
upstream_batches = sa.Table(
    "upstream_batches",
    metadata,
    sa.Column("connector", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("members", sa.Text, nullable=False),  # JSON [[message id, step], ...]
    sa.Column("created_at", sa.Float, nullable=False),
)
sa.Index("ix_upstream_batches_created", upstream_batches.c.created_at)

upstream_batch_members = sa.Table(
    "upstream_batch_members",
    metadata,
    sa.Column("connector", sa.String(32), primary_key=True),
    sa.Column("message_id", sa.String(32), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
sa.Index("ix_upstream_batch_members_created", upstream_batch_members.c.created_at)

# Each account's suppression list (SPEC §11, domain.optout): a send to a listed number
# is rejected as OPTED_OUT. The primary key is the send path's index: one lookup per
# batch, `account_id = ? AND number IN (…)`, and the keyset of the list's pages.
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("number", sa.String(16), primary_key=True),  # E.164, as messages.recipient
    sa.Column("source", sa.String(16), nullable=False),  # api, cli, import, keyword
    sa.Column("created_at", sa.Float, nullable=False),
)

# Who owns the inbound traffic to a number or sender name (SPEC §10): `batgate accounts
# add-number`. One owner per number.
owned_numbers = sa.Table(
    "owned_numbers",
    metadata,
    sa.Column("number", sa.String(16), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
sa.Index("ix_owned_numbers_account", owned_numbers.c.account_id)

# Inbound messages (SPEC §10), kept whether or not anyone owns their recipient:
# `account_id` NULL is unrouted (`batgate inbound --unrouted`). Paged by id.
inbound_messages = sa.Table(
    "inbound_messages",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.Integer, nullable=True),
    sa.Column("sender", sa.String(32), nullable=False),
    sa.Column("recipient", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("parts", sa.Integer, nullable=False),
    sa.Column("incomplete", sa.Boolean, nullable=False),
    sa.Column("connector", sa.String(32), nullable=False),
    sa.Column("carrier_id", sa.String(65), nullable=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("in_reply_to", sa.String(32), nullable=True),
)
sa.Index("ix_inbound_messages_account", inbound_messages.c.account_id, inbound_messages.c.id)

# The console's operators (`batgate operators create`), and their sessions: a random
# token in an HttpOnly cookie, kept as its SHA-256, with the session's CSRF token.
operators = sa.Table(
    "operators",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("operator_id", sa.Integer, sa.ForeignKey("operators.id"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
sa.Index("ix_console_sessions_expires", console_sessions.c.expires_at)

# Messages that went final, counted per minute and per hour (`scale` "m" or "h", `slot`
# the minute or hour since the epoch), by account, channel, connector, status and time
# from send to final (`bucket`: domain.rollup), in the transaction that made them
# final: the console's overview reads this, never `messages`.
message_rollup = sa.Table(
    "message_rollup",
    metadata,
    sa.Column("scale", sa.String(1), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("connector", sa.String(32), primary_key=True),  # "" when none took it
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("bucket", sa.Integer, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)
