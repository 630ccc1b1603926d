"""A webhook receiver for the bench: a bare ASGI app that reads each request and answers 200.

It checks nothing (the bench measures the sender), so it costs as little as a
receiver can. `python bench/receiver.py --port N`.
"""

from __future__ import annotations

import argparse

import uvicorn
from ceiling import Receive, Scope, Send

_DONE = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
_EMPTY = {"type": "http.response.body", "body": b""}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        for _ in range(2):
            kind = (await receive())["type"]
            if kind == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the whole body, as a real receiver would
        more = (await receive()).get("more_body", False)
    await send(_DONE)
    await send(_EMPTY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning"
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
