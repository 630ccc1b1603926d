"""Presets: what `preset = "NAME"` fills into a `kind = "http"` connector's table. Pure.

The operator's own keys win: top-level keys replace the preset's, and the `send`,
`send.query`, `send.headers`, `answer` and `callback` tables are merged key by key.
A preset's `inbound` table is filled in only when the operator writes one (even
empty): taking messages from phones needs a `callback_token`, which a preset cannot
choose, and the carrier's side set up to call.
"""

from __future__ import annotations

from typing import Any

# Kannel's smsbox `sendsms` interface (GET /cgi-bin/sendsms). It answers 202
# "0: Accepted for delivery" (or "3: Queued for later delivery") and gives no id, so
# the hand-over is named by batgate's reference, carried in the dlr-url with its
# token. dlr-mask 19 = 1 delivered + 2 undeliverable + 16 refused by the SMSC: the
# final reports only (8, the SMSC's acknowledgement, would be a call that changes
# nothing). 403 "Not routable. Do not try again." refuses the message for good;
# 403 "Authorization failed" is our credentials (the connector is down).
KANNEL: dict[str, Any] = {
    "send": {
        "method": "GET",
        "query": {
            "username": "{username}",
            "password": "{password}",
            "from": "{from}",
            "to": "{to}",
            "text": "{text}",
            "charset": "UTF-8",
            "coding": "{coding}",
            "validity": "{validity_minutes}",
            "dlr-mask": "19",
            "dlr-url": "{callback_url}&type=%d",
        },
    },
    "answer": {"success": "regex:^[03]: ", "refused": "regex:^Not routable"},
    "callback": {
        "status": "param:type",
        "delivered": ["1"],
        "undeliverable": ["2", "16"],
        "pending": ["4", "8"],
    },
}

# Kannel's smsbox `sms-service` with a `get-url` (docs/http-carriers.md gives the
# group): ?kind=mo&token=…&from=%p&to=%P&text=%b&charset=%C&coding=%c&udh=%u&id=%I.
# %b is the text's octets as Kannel holds them: UTF-8 for GSM-7 and Latin-1 messages
# (Kannel converts them), UTF-16BE for UCS-2 ones, which %C then names and %c says 2.
# %a would join the words with '+' (and cut UTF-16 octets at 0x20). %u is the user
# data header of a part Kannel gave up joining (its parts are joined otherwise).
KANNEL_INBOUND: dict[str, Any] = {
    "when": "param:kind",
    "when_values": ["mo"],
    "from": "param:from",
    "to": "param:to",
    "text": "param:text",
    "charset": "param:charset",
    "coding": "param:coding",
    "udh": "param:udh",
    "id": "param:id",
}

PRESETS: dict[str, dict[str, Any]] = {"kannel": KANNEL}
INBOUND: dict[str, dict[str, Any]] = {"kannel": KANNEL_INBOUND}
_MERGED = {"send", "answer", "callback", "query", "headers"}


def filled(table: dict[str, Any]) -> dict[str, Any]:
    """`table` with its preset's keys under the operator's (unchanged without a known
    preset: the preset's name is checked where it is declared)."""
    name = str(table.get("preset"))
    preset = PRESETS.get(name)
    if preset is None:
        return table
    merged = _merge(preset, table)
    inbound = table.get("inbound")
    if isinstance(inbound, dict) and name in INBOUND:
        merged["inbound"] = {**INBOUND[name], **inbound}
    return merged


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        if key in _MERGED and isinstance(below, dict) and isinstance(value, dict):
            merged[key] = _merge(below, value)
        else:
            merged[key] = value
    return merged
