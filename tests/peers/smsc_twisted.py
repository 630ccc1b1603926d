"""smsc_twisted: a second, independent SMSC for batgate's SMPP tests, on smpp.twisted3.

Why a second one: smpp34's Python server binds anyone and does its session work in Rust,
so it cannot refuse a bind. smpp.twisted (the Twisted SMPP server Jasmin maintains) checks
every bind against a twisted.cred portal and answers with its own error status, answers an
unbind only once the session's in-flight requests have finished, and can push ``data_sm``
as well as ``deliver_sm``: a different implementation, with different habits, for our
client to meet.

What it does: binds are authenticated against the one ``--system-id``/``--password``; every
``submit_sm`` is accepted with a fresh decimal message id and gets a delivery receipt once
its ``submit_sm_resp`` has been written — a ``deliver_sm`` (esm_class 0x04, the classic text
plus the ``receipted_message_id`` and ``message_state`` TLVs), UNDELIV when the destination
ends in 0001, and a ``data_sm`` carrying only those two TLVs when it ends in 0010. A small
HTTP API (Twisted's web server, same reactor) says what it saw: ``GET /stats``,
``GET /healthz``, ``POST /reset``.

Run: ``python tests/peers/smsc_twisted.py --port P --control-port C --system-id ID
--password PW``; it prints ``ready`` once both ports listen and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smpp.pdu import pdu_types as t
from smpp.pdu.operations import DataSM, DeliverSM, UnbindResp
from smpp.pdu.pdu_types import CommandId, CommandStatus
from smpp.twisted.config import SMPPServerConfig
from smpp.twisted.protocol import DataHandlerResponse, SMPPServerProtocol, SMPPSessionStates
from smpp.twisted.server import IAuthenticatedSMPP, SMPPServerFactory
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import IRealm, Portal
from twisted.internet import reactor
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

HOST = "127.0.0.1"
FIRST_ID = 1_000_000  # message ids count up from here: the first one is 1000001
UNDELIVERABLE = "0001"  # destination suffix whose receipt says UNDELIV
DATA_SM = "0010"  # destination suffix whose receipt is a data_sm with TLVs only
RECEIVING = (SMPPSessionStates.BOUND_RX, SMPPSessionStates.BOUND_TRX)


@dataclass(frozen=True)
class Options:
    port: int
    control_port: int
    system_id: str
    password: str
    max_bindings: int
    receipt_delay: float
    log_level: str


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True, help="SMPP port")
    p.add_argument("--control-port", type=int, required=True, help="HTTP control API port")
    p.add_argument("--system-id", required=True, help="the one system_id allowed to bind")
    p.add_argument("--password", required=True, help="its password")
    p.add_argument("--max-bindings", type=int, default=8, help="binds per type for system_id")
    p.add_argument("--receipt-delay", type=float, default=0.0, help="seconds before a receipt")
    p.add_argument("--log-level", default="WARNING", help="smpp.twisted's logging level")
    a = p.parse_args(argv)
    return Options(
        port=a.port,
        control_port=a.control_port,
        system_id=a.system_id,
        password=a.password,
        max_bindings=a.max_bindings,
        receipt_delay=a.receipt_delay,
        log_level=a.log_level.upper(),
    )


@dataclass
class Stats:
    binds: int = 0
    bind_failures: int = 0
    unbinds: int = 0  # unbind PDUs received from an ESME
    unbind_resps: int = 0  # unbind_resp PDUs sent
    submits: int = 0
    receipts_sent: int = 0
    receipts_acked: int = 0
    receipts_failed: int = 0
    by_destination: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "binds": self.binds,
            "bindFailures": self.bind_failures,
            "unbinds": self.unbinds,
            "unbindResps": self.unbind_resps,
            "submits": self.submits,
            "byDestination": dict(self.by_destination),
            "receiptsSent": self.receipts_sent,
            "receiptsAcked": self.receipts_acked,
            "receiptsFailed": self.receipts_failed,
        }


# ── Authentication ──────────────────────────────────────────────────────────


@implementer(IRealm)
class Realm:
    """The avatar of an authenticated ESME is just its system_id."""

    def requestAvatar(
        self, avatar_id: str, mind: object, *interfaces: Any
    ) -> tuple[Any, str, Callable[[], None]]:
        if IAuthenticatedSMPP not in interfaces:
            raise NotImplementedError("only IAuthenticatedSMPP avatars are served")
        return IAuthenticatedSMPP, avatar_id, lambda: None


def portal_for(system_id: str, password: str) -> Portal:
    checker = InMemoryUsernamePasswordDatabaseDontUse()
    # str, not bytes: smpp.twisted decodes system_id and password before it logs in.
    checker.addUser(system_id, password)
    return Portal(Realm(), [checker])


# ── Receipts ────────────────────────────────────────────────────────────────


def receipt_text(message_id: str, stat: str, submitted: float, short_message: bytes) -> bytes:
    """The classic (SMPP 3.4 appendix B) delivery receipt text; dates in UTC."""
    dlvrd, err = ("001", "000") if stat == "DELIVRD" else ("000", "001")
    preview = short_message.decode("latin-1")[:20]
    if not (preview.isascii() and preview.isprintable()):
        preview = ""
    submit_date = time.strftime("%y%m%d%H%M", time.gmtime(submitted))
    done_date = time.strftime("%y%m%d%H%M", time.gmtime())
    return (
        f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{submit_date} "
        f"done date:{done_date} stat:{stat} err:{err} text:{preview}"
    ).encode("ascii")


def receipt_pdu(submit: Any, message_id: str, submitted: float) -> DeliverSM | DataSM:
    """The receipt for an accepted submit_sm: addresses swapped, state in TLVs (and text)."""
    p = submit.params
    destination = p["destination_addr"].decode("ascii", "replace")
    undelivered = destination.endswith(UNDELIVERABLE)
    common: dict[str, Any] = {
        "source_addr": p["destination_addr"],
        "source_addr_ton": p["dest_addr_ton"],
        "source_addr_npi": p["dest_addr_npi"],
        "destination_addr": p["source_addr"],
        "dest_addr_ton": p["source_addr_ton"],
        "dest_addr_npi": p["source_addr_npi"],
        "esm_class": t.EsmClass(t.EsmClassMode.DEFAULT, t.EsmClassType.SMSC_DELIVERY_RECEIPT),
        "registered_delivery": t.RegisteredDelivery(
            t.RegisteredDeliveryReceipt.NO_SMSC_DELIVERY_RECEIPT_REQUESTED
        ),
        "data_coding": t.DataCoding(),
        "receipted_message_id": message_id,
        "message_state": (
            t.MessageState.UNDELIVERABLE if undelivered else t.MessageState.DELIVERED
        ),
    }
    if destination.endswith(DATA_SM):
        return DataSM(**common)
    stat = "UNDELIV" if undelivered else "DELIVRD"
    text = receipt_text(message_id, stat, submitted, p.get("short_message") or b"")
    return DeliverSM(short_message=text, **common)


# ── The SMSC ────────────────────────────────────────────────────────────────


class CountingProtocol(SMPPServerProtocol):
    """smpp.twisted's server protocol, counting unbinds, unbind_resps and refused binds."""

    def onPDURequest_unbind(self, reqPDU: Any) -> None:
        self.factory.stats.unbinds += 1
        super().onPDURequest_unbind(reqPDU)

    def sendPDU(self, pdu: Any) -> None:
        if isinstance(pdu, UnbindResp):
            self.factory.stats.unbind_resps += 1
        super().sendPDU(pdu)

    def sendErrorResponse(self, reqPDU: Any, status: Any, system_id: str) -> None:
        self.factory.stats.bind_failures += 1
        super().sendErrorResponse(reqPDU, status, system_id)


class Smsc(SMPPServerFactory):
    """Accepts every submit_sm and sends its receipt on a session of the same system_id."""

    protocol = CountingProtocol

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.stats = Stats()
        self.number = FIRST_ID
        config = SMPPServerConfig(
            msgHandler=self.on_message,
            systems={opts.system_id: {"max_bindings": opts.max_bindings}},
        )
        super().__init__(config, auth_portal=portal_for(opts.system_id, opts.password))
        self.noisy = False

    def addBoundConnection(self, connection: SMPPServerProtocol) -> None:
        self.stats.binds += 1
        super().addBoundConnection(connection)

    def on_message(self, system_id: str, protocol: SMPPServerProtocol, pdu: Any) -> Any:
        """smpp.twisted's message handler: its return value becomes the response."""
        if pdu.commandId != CommandId.submit_sm:
            return CommandStatus.ESME_RINVCMDID
        self.stats.submits += 1
        destination = pdu.params["destination_addr"].decode("ascii", "replace")
        self.stats.by_destination[destination] = self.stats.by_destination.get(destination, 0) + 1
        self.number += 1
        message_id = str(self.number)
        # The handler's answer is written as soon as we return; the receipt goes after it.
        reactor.callLater(  # type: ignore[attr-defined]
            self.opts.receipt_delay, self.send_receipt, system_id, protocol, pdu, message_id
        )
        return DataHandlerResponse(status=CommandStatus.ESME_ROK, message_id=message_id)

    def send_receipt(
        self, system_id: str, protocol: SMPPServerProtocol, submit: Any, message_id: str
    ) -> None:
        binding = protocol if protocol.sessionState in RECEIVING else None
        if binding is None:
            bound = self.getBoundConnections(system_id)
            binding = bound.getNextBindingForDelivery() if bound else None
        if binding is None:
            self.stats.receipts_failed += 1
            return
        self.stats.receipts_sent += 1
        sent = binding.sendDataRequest(receipt_pdu(submit, message_id, time.time()))
        sent.addCallbacks(self.receipt_acked, self.receipt_failed)

    def receipt_acked(self, result: Any) -> None:
        self.stats.receipts_acked += 1

    def receipt_failed(self, failure: Failure) -> None:
        self.stats.receipts_failed += 1  # NAKed, timed out, or the session went away


# ── Control API ─────────────────────────────────────────────────────────────


Handler = Callable[[], dict[str, Any]]


class JsonResource(Resource):
    """One control endpoint: a GET and/or POST handler whose dict is answered as JSON."""

    isLeaf = True

    def __init__(self, get: Handler | None = None, post: Handler | None = None) -> None:
        super().__init__()
        self.get, self.post = get, post

    def render_GET(self, request: Request) -> bytes:
        return self.answer(request, self.get)

    def render_POST(self, request: Request) -> bytes:
        return self.answer(request, self.post)

    @staticmethod
    def answer(request: Request, handler: Handler | None) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        if handler is None:
            request.setResponseCode(405)
            return b'{"error": "method not allowed"}'
        return json.dumps(handler()).encode()


def control_site(smsc: Smsc) -> Site:
    def reset() -> dict[str, Any]:
        smsc.stats = Stats()
        return {"reset": True}

    root = Resource()
    root.putChild(b"stats", JsonResource(get=lambda: smsc.stats.as_json()))
    root.putChild(b"healthz", JsonResource(get=lambda: {"status": "ok"}))
    root.putChild(b"reset", JsonResource(post=reset))
    site = Site(root)
    site.noisy = False
    site.log = lambda request: None  # type: ignore[method-assign]  # no access log
    return site


# ── Main ────────────────────────────────────────────────────────────────────


def setup_logging(level: str) -> None:
    """smpp.twisted logs through logging, Twisted through twisted.logger: both to stderr."""
    logging.basicConfig(stream=sys.stderr, level=level, format="%(name)s %(levelname)s %(message)s")
    observer = FilteringLogObserver(
        textFileLogObserver(sys.stderr),
        [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def main(argv: Sequence[str] | None = None) -> int:
    faulthandler.enable()  # a crash of the SMSC leaves its stack in its log
    opts = parse_args(argv)
    setup_logging(opts.log_level)
    smsc = Smsc(opts)
    reactor.listenTCP(opts.port, smsc, interface=HOST)  # type: ignore[attr-defined]
    reactor.listenTCP(opts.control_port, control_site(smsc), interface=HOST)  # type: ignore[attr-defined]
    reactor.callWhenRunning(print, "ready", flush=True)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]  # SIGTERM/SIGINT stop it cleanly
    return 0


if __name__ == "__main__":
    sys.exit(main())
