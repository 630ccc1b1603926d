"""The machine's ceiling: a bare ASGI app under the uvicorn settings `batgate serve` uses.

It answers every HTTP request with the same small JSON document (shaped like a
status answer), so wrk measures uvicorn, the event loop and the HTTP parser and
nothing else. `python bench/ceiling.py --port N`.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY = (
    b'{"messagelistId":1,"messageId":"0190a0b0c0d0e0f0a1b2c3","deliverystatus":"delivered",'
    b'"partscount":1,"cost":0.05,"type":"sms","to":"+380501234567"}'
)
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))],
}
_BODY = {"type": "http.response.body", "body": BODY}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        for _ in range(2):  # uvicorn sends startup, then (at the end) shutdown
            kind = (await receive())["type"]
            if kind == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    await send(_START)
    await send(_BODY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The same Config as `batgate serve` (src/batgate/cli/main.py): default loop and
    # http implementations (uvloop and httptools when installed), no access log.
    config = uvicorn.Config(
        app, host=args.host, port=args.port, access_log=False, log_level="info", lifespan="on"
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
