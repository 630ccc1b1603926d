"""The status callbacks' receiver for bench/vs_jasmin.py: Jasmin's DLRs and batgate's webhooks.

Records, for every callback, the message id, the status it reports and the time it
arrived (wall clock, so the load generator in another process can subtract its own
send times), and answers each gateway as it expects:

- ``POST /dlr`` — Jasmin's DLR (form fields ``id``, ``message_status``); answered
  ``ACK/Jasmin``, without which Jasmin throws the DLR again 30 s later;
- ``POST /hook`` — batgate's webhook (JSON ``messageId``, ``deliverystatus``); 200.

``GET /count?status=S`` counts callbacks with that status (normalised: DELIVRD is
``delivered``); ``GET /dump`` returns every record as ``[id, status, time]``;
``POST /reset`` forgets them. ``python bench/callbacks.py --port N``.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from urllib.parse import parse_qs

import orjson
from aiohttp import web

_STATUS = {"DELIVRD": "delivered", "UNDELIV": "undeliverable", "REJECTD": "undeliverable"}


class Book:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, float]] = []
        self.counts: Counter[str] = Counter()

    def add(self, message_id: str, status: str) -> None:
        status = _STATUS.get(status, status)
        self.records.append((message_id, status, time.time()))
        self.counts[status] += 1


def app() -> web.Application:
    book = Book()

    async def dlr(request: web.Request) -> web.Response:
        fields = parse_qs((await request.read()).decode())
        book.add(fields.get("id", [""])[0], fields.get("message_status", [""])[0])
        return web.Response(text="ACK/Jasmin")

    async def hook(request: web.Request) -> web.Response:
        doc = orjson.loads(await request.read())
        book.add(str(doc.get("messageId", "")), str(doc.get("deliverystatus", "")))
        return web.Response()

    async def count(request: web.Request) -> web.Response:
        status = request.query.get("status", "delivered")
        return web.json_response({"count": book.counts[status]})

    async def dump(_request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(book.records), content_type="application/json")

    async def reset(_request: web.Request) -> web.Response:
        book.records.clear()
        book.counts.clear()
        return web.json_response({"reset": True})

    application = web.Application()
    application.router.add_post("/dlr", dlr)
    application.router.add_post("/hook", hook)
    application.router.add_get("/count", count)
    application.router.add_get("/dump", dump)
    application.router.add_post("/reset", reset)
    application.router.add_get("/", count)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
