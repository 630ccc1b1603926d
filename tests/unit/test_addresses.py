"""The SSRF rules (domain.addresses), the accept-time screen (api.callbacks) and the
connect-time resolver (engine.guard), on addresses and resolvers of the test's own:
no name is looked up and nothing is connected to."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from batgate.api.callbacks import CallbackScreen
from batgate.domain.addresses import AddressPolicy, internal_kind, is_localhost_name
from batgate.domain.messages import ErrorCode, MessageType, NewMessage, Rejection, Step
from batgate.engine.guard import GuardedResolver, RefusedAddress, refusal

INTERNAL = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("fe80::1", "link-local"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fd00::1", "private"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
    ("192.0.2.1", "private"),  # documentation (TEST-NET-1)
    ("240.0.0.1", "private"),  # reserved (Python counts 240/4 among the private ranges)
    ("255.255.255.255", "private"),  # broadcast
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "link-local"),
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
]
PUBLIC = ["8.8.8.8", "93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(("address", "kind"), INTERNAL, ids=[a for a, _ in INTERNAL])
def test_internal_addresses_are_named(address: str, kind: str) -> None:
    found = internal_kind(ipaddress.ip_address(address))
    assert found is not None and kind in found


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_not_internal(address: str) -> None:
    assert internal_kind(ipaddress.ip_address(address)) is None


HOSTS = [
    # (host, the operator's allowed ranges, refused?)
    ("127.0.0.1", [], True),
    ("[::1]", [], True),
    ("localhost", [], True),
    ("api.LOCALHOST.", [], True),
    ("169.254.169.254", [], True),
    ("10.0.0.7", [], True),
    ("10.0.0.7", ["10.0.0.0/8"], False),
    ("127.0.0.1", ["127.0.0.1"], False),
    ("localhost", ["127.0.0.0/8"], False),
    ("169.254.169.254", ["10.0.0.0/8"], True),
    ("8.8.8.8", [], False),
    ("hooks.example.com", [], False),  # a name: judged once resolved
]


@pytest.mark.parametrize(("host", "allowed", "refused"), HOSTS)
def test_hosts_judged_without_dns(host: str, allowed: list[str], refused: bool) -> None:
    policy = AddressPolicy.allowing(allowed)
    assert (policy.host_refusal(host) is not None) is refused
    assert (refusal(policy, f"http://{host}:8080/hook") is not None) is refused


def test_localhost_names() -> None:
    assert is_localhost_name("localhost") and is_localhost_name("a.b.localhost.")
    assert not is_localhost_name("localhost.example.com")


def test_a_bad_range_is_refused() -> None:
    with pytest.raises(ValueError):
        AddressPolicy.allowing(["10.0.0.0/33"])


# -- accepting a message ----------------------------------------------------------------


def message(callback: str | None) -> NewMessage:
    step = Step(MessageType.SMS, "+380501234567", "Shop", "hi", None, 60, 1)
    return NewMessage(None, (step,), callback)


class Names:
    """A resolver of fixed answers, counting the questions."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


SCREENED = [
    # (callbackUrl, accepted?)
    (None, True),
    ("https://hooks.example.com/dlr", True),
    ("http://127.0.0.1:22/", False),
    ("http://169.254.169.254/latest/meta-data/", False),
    ("http://localhost:8080/x", False),
    ("http://[::ffff:10.0.0.1]/", False),
    ("http://inside.example.net/", False),  # resolves to a private address
    ("http://mixed.example.net/", False),  # one public, one internal: refused
    ("http://unknown.example.org/", True),  # does not resolve now: judged at connect time
]


@pytest.mark.parametrize(("callback", "accepted"), SCREENED)
async def test_a_callback_pointing_inside_is_rejected_per_message(
    callback: str | None, accepted: bool
) -> None:
    names = Names(
        {
            "hooks.example.com": ["93.184.215.14"],
            "inside.example.net": ["10.9.8.7"],
            "mixed.example.net": ["93.184.215.14", "127.0.0.1"],
        }
    )
    screen = CallbackScreen(AddressPolicy(), names)
    kept, judged = message(None), message(callback)
    first, second = await screen.screen([kept, judged])
    assert first is kept
    if accepted:
        assert second is judged
    else:
        assert isinstance(second, Rejection)
        assert second.code is ErrorCode.INVALID_CALLBACK_URL
        assert "callbackUrl: " in second.message


async def test_names_are_resolved_once_a_minute() -> None:
    now = [0.0]
    names = Names({"hooks.example.com": ["93.184.215.14"]})
    screen = CallbackScreen(AddressPolicy(), names, clock=lambda: now[0])
    batch = [message("https://hooks.example.com/a"), message("https://hooks.example.com/b")]
    await screen.screen(batch)
    await screen.screen(batch)
    assert names.asked == ["hooks.example.com"]
    now[0] = 61.0
    await screen.screen(batch)
    assert names.asked == ["hooks.example.com"] * 2


# -- connecting ---------------------------------------------------------------------------


class Fixed(AbstractResolver):
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


CONNECTS = [
    # (what the name resolves to now, allowed ranges, addresses connected to; None: refused)
    (["93.184.215.14"], [], ["93.184.215.14"]),
    (["10.0.0.1", "93.184.215.14"], [], ["93.184.215.14"]),
    (["127.0.0.1"], [], None),
    (["169.254.169.254", "10.0.0.1"], [], None),
    (["127.0.0.1"], ["127.0.0.0/8"], ["127.0.0.1"]),
]


@pytest.mark.parametrize(("resolved", "allowed", "connected"), CONNECTS)
async def test_the_sender_connects_only_to_addresses_judged_now(
    resolved: list[str], allowed: list[str], connected: list[str] | None
) -> None:
    guard = GuardedResolver(AddressPolicy.allowing(allowed), Fixed(resolved))
    if connected is None:
        with pytest.raises(RefusedAddress, match="internal"):
            await guard.resolve("hooks.example.com", 443)
    else:
        assert [r["host"] for r in await guard.resolve("hooks.example.com", 443)] == connected
