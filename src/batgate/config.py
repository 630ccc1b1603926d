"""Settings: defaults, a TOML file named by ``BATGATE_CONFIG``, ``BATGATE_*`` variables.

Precedence, highest first: explicit overrides (command-line flags), environment
variables (nested keys with ``__``, e.g. ``BATGATE_SANDBOX__DELIVERY_DELAY=0.5``),
the TOML file, the defaults below. pydantic-settings does the merging and the
type checking, so a typo in a value fails at start-up with a clear message.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import tomllib
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from batgate.channels.http_carrier import extract as http_extract
from batgate.channels.http_carrier import inbound as http_inbound
from batgate.channels.http_carrier import presets as http_presets
from batgate.channels.http_carrier import template as http_template
from batgate.channels.http_carrier.answers import ANSWER_KINDS
from batgate.domain.schedule import RECIPIENT_ZONE, QuietHours


class RateLimitSettings(BaseModel):
    """Per-account token bucket (SPEC §6): `rate` requests/s, bursts of `burst`."""

    enabled: bool = True
    rate: float = 100.0
    burst: int = 200


class RetentionSettings(BaseModel):
    """How long records are kept (docs/operations.md, Retention), in days; 0: for ever.

    The workers remove old records in batches of `batch_size`, `pause` seconds apart,
    every `interval` seconds. Message events (the history and the webhook outbox)
    and webhook attempts go after `events_days`; final messages, with all about
    them, after `messages_days` (by default never: nothing a customer can look up
    disappears unless the operator says so); `redact_after_days` blanks the text and
    messageData of final messages earlier, keeping status, parts and money.
    Idempotency keys go once their 24-hour window has passed.
    """

    events_days: float = Field(default=90, ge=0)
    messages_days: float = Field(default=0, ge=0)
    redact_after_days: float = Field(default=0, ge=0)
    interval: float = Field(default=3600, gt=0)
    batch_size: int = Field(default=1000, ge=1)
    pause: float = Field(default=0.2, ge=0)


class HttpSettings(BaseModel):
    """What one HTTP client may make the server hold (api.server, docs/security.md).

    A request head of at most `max_header_bytes` (request line and headers, 431
    beyond), `max_headers` headers and a target of `max_url_bytes` (414 beyond); the
    head within `header_timeout` seconds, the body within `body_timeout` after it
    (a slow client is answered 408 or cut off); idle keep-alive connections closed
    after `keep_alive`. The body's size: `max_body_bytes`.
    """

    max_header_bytes: int = Field(default=32768, ge=1024)
    max_headers: int = Field(default=100, ge=1)
    max_url_bytes: int = Field(default=8192, ge=256)
    header_timeout: float = Field(default=10.0, gt=0)
    body_timeout: float = Field(default=60.0, gt=0)
    keep_alive: float = Field(default=5.0, gt=0)
    # SIGTERM: keep serving this long with /readyz answering 503, so that a load
    # balancer's health checks take the process out before it stops listening.
    drain_seconds: float = Field(default=0.0, ge=0)


class AuthSettings(BaseModel):
    """Failed logins cost the caller, not the gateway (docs/security.md).

    A source address may fail `failures_per_address` times, and a username
    `failures_per_username` times, per `failure_window` seconds; beyond that its
    logins are answered 429 before anything is checked. At most `password_checks`
    Argon2 verifications run at once in a process, `password_queue` more may wait.
    """

    failures_per_address: int = Field(default=30, ge=1)
    failures_per_username: int = Field(default=10, ge=1)
    failure_window: float = Field(default=60.0, gt=0)
    password_checks: int = Field(default=2, ge=1)
    password_queue: int = Field(default=16, ge=0)


class SandboxSettings(BaseModel):
    """The simulator carrier's timing (SPEC §7), seconds; and where it runs.

    With `url` set, workers hand messages to the sandbox carrier run as a process of
    its own (`batgate sandbox`) over HTTP, and that process's timing applies.
    """

    delivery_delay: float = 2.0
    slow_delay: float = 20.0
    jitter: float = 0.5
    url: str | None = None
    timeout: float = 5.0


class DispatcherSettings(BaseModel):
    poll_interval: float = 0.25
    batch_size: int = 200
    lease_seconds: float = 60.0
    concurrency: int = 64
    # Delays between send attempts of one channel step; retries run out after the last.
    retry_delays: list[float] = Field(default_factory=lambda: [0.5, 1.0, 2.0])
    # A message claimed again after its lease ran out more often than this (its worker
    # died holding it, or handling it raised) ends permanenterror, never claimed for ever.
    max_reclaims: int = Field(default=5, ge=1)
    # How often each engine reads the operator's connector switches (drain, enable)
    # and writes what it sees of each connector for `batgate connectors`.
    connector_report_seconds: float = Field(default=2.0, gt=0)


class WebhookSettings(BaseModel):
    """Webhook delivery (SPEC §4). Seconds."""

    timeout: float = 10.0
    # Waits between attempts: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h,
    # then every `repeat_every` until the waits add up to `give_up_after` (24 h+).
    retry_delays: list[float] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0]
    )
    repeat_every: float = 28800
    give_up_after: float = 86400
    jitter: float = 0.1
    concurrency: int = 64
    per_endpoint: int = 8
    batch_size: int = 200
    poll_interval: float = 0.25
    lease_seconds: float = 60.0
    secret_overlap: float = 86400
    max_retry_after: float = 86400
    # Ranges a message's callbackUrl may reach although they are not public (loopback,
    # private, link-local, …): CIDRs such as "10.1.0.0/16" for receivers on premises.
    # Account webhook URLs, set by the operator, are never checked.
    allow_private_callbacks: list[str] = Field(default_factory=list)

    @field_validator("allow_private_callbacks")
    @classmethod
    def _ranges(cls, ranges: list[str]) -> list[str]:
        for network in ranges:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an IP range (CIDR)") from None
        return ranges


class MetricsSettings(BaseModel):
    """Prometheus metrics (docs/operations.md, Observability)."""

    enabled: bool = True  # GET /metrics on the API port of `batgate serve`
    cache_seconds: float = Field(default=2.0, ge=0)  # database gauges: read at most this often
    worker_port: int | None = Field(default=None, ge=1, le=65535)  # `batgate worker` /metrics
    worker_host: str = "127.0.0.1"


_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_CHANNELS = ("sms", "viber", "rcs", "flashcall")
SANDBOX_NAMES = ("simulator", "sandbox")
_PREFIX = re.compile(r"\+[0-9]{1,15}")


class CarrierSettings(BaseModel):
    """What every carrier's `[connectors.NAME]` table may say, whatever its kind
    (docs/carriers.md). Unknown keys are refused, so a typo does not silently fall
    back to a default."""

    model_config = ConfigDict(extra="forbid")

    # What this carrier charges by destination prefix ("" = any), for routes with
    # strategy = "cheapest" (docs/carriers.md).
    prices: dict[str, float] = Field(default_factory=dict)
    # Its circuit opens after this many hand-overs in a row it could not take, and
    # stays open (the connector skipped by routes with another) this many seconds.
    circuit_errors: int = Field(default=5, ge=1)
    circuit_cooldown: float = Field(default=30.0, gt=0)

    @field_validator("prices")
    @classmethod
    def _price_prefixes(cls, prices: dict[str, float]) -> dict[str, float]:
        for prefix, price in prices.items():
            if prefix and not _PREFIX.fullmatch(prefix):
                raise ValueError(f"{prefix!r}: a price's prefix is '+' and digits, or \"\" for any")
            if price < 0:
                raise ValueError(f"{prefix!r}: a price is not negative (got {price})")
        return prices


class SmppSettings(CarrierSettings):
    """One carrier's SMSC over SMPP 3.4: a `[connectors.NAME]` table with kind = "smpp".

    Every key is described in docs/smpp.md.
    """

    kind: Literal["smpp"]
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    system_id: str = Field(min_length=1, max_length=15)
    password: str = Field(default="", max_length=8)
    system_type: str = Field(default="", max_length=12)
    # One bind_transceiver per connection, or a bind_transmitter and a bind_receiver.
    bind: Literal["transceiver", "transmitter_receiver"] = "transceiver"
    connections: int = Field(default=1, ge=1, le=64)
    window: int = Field(default=10, ge=1, le=1000)
    throughput: float = Field(default=0.0, ge=0)  # submit_sm/s per connection; 0: no limit
    connect_timeout: float = Field(default=10.0, gt=0)
    response_timeout: float = Field(default=10.0, gt=0)
    submit_timeout: float = Field(default=10.0, gt=0)  # a whole send, window wait included
    enquire_link_interval: float = Field(default=30.0, gt=0)
    reconnect_delay: float = Field(default=1.0, gt=0)
    reconnect_max_delay: float = Field(default=30.0, gt=0)
    throttle_delay: float = Field(default=1.0, gt=0)
    unbind_timeout: float = Field(default=5.0, gt=0)
    split: Literal["udh", "udh16", "sar", "payload"] = "udh"
    gsm7_packed: bool = False
    data_coding: Literal["auto", "latin1", "ucs2"] = "auto"
    service_type: str = Field(default="", max_length=5)
    source_ton: int | None = Field(default=None, ge=0, le=6)
    source_npi: int | None = Field(default=None, ge=0, le=18)
    dest_ton: int = Field(default=1, ge=0, le=6)
    dest_npi: int = Field(default=1, ge=0, le=18)
    registered_delivery: bool = True
    validity_period: bool = True  # send the step's TTL as a relative validity period
    receipt_ids: Literal["auto", "same", "hex_to_decimal", "decimal_to_hex"] = "auto"
    unknown_status: Literal["processing", "delivered", "undeliverable"] = "processing"
    mo_reassembly_timeout: float = Field(default=10.0, gt=0)
    mo_pending_max: int = Field(default=10000, ge=1)

    @property
    def send_timeout(self) -> float:
        return self.submit_timeout

    @model_validator(mode="after")
    def _delays_ordered(self) -> SmppSettings:
        if self.reconnect_max_delay < self.reconnect_delay:
            raise ValueError("reconnect_max_delay must not be shorter than reconnect_delay")
        return self


class SmsbatSettings(CarrierSettings):
    """An SMSBAT-compatible API upstream (SMSBAT itself, or another batgate): a
    `[connectors.NAME]` table with kind = "smsbat" (SPEC §9, docs/carriers.md)."""

    kind: Literal["smsbat"]
    url: str = Field(min_length=1)  # base URL: {url}/bat/messagelist, {url}/bat/message/{id}
    api_key: str = Field(min_length=1)  # sent as X-Authorization-Key
    # The upstream's Standard Webhooks arrive at /callbacks/NAME, signed with this.
    webhook_secret: str | None = None
    batch_window: float = Field(default=0.05, ge=0, le=5)  # seconds hand-overs are collected
    batch_size: int = Field(default=100, ge=1, le=1000)  # messages per POST /bat/messagelist
    connections: int = Field(default=4, ge=1, le=64)  # requests under way at once
    timeout: float = Field(default=5.0, gt=0)  # one request
    retries: int = Field(default=1, ge=0, le=10)  # of a batch at once, with its key, on 5xx etc.
    # Statuses are polled for hand-overs with no event this long (seconds); by default
    # 2 s without a webhook_secret (polling is the way), 60 s with one (a safety net).
    poll_after: float | None = Field(default=None, gt=0)
    poll_max_delay: float = Field(default=300.0, gt=0)  # per message, doubling up to this
    poll_interval: float = Field(default=1.0, gt=0)  # how often the poller looks
    status_rate: float = Field(default=20.0, gt=0)  # GET /bat/message/{id} per second at most
    currency: str = "USD"  # of the upstream's billAmount when it does not say

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
            raise ValueError(f"{url!r}: the upstream's base URL, http(s)://host[:port][/path]")
        return url.rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, secret: str | None) -> str | None:
        if secret is not None:
            try:
                key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            except ValueError:
                key = b""
            if not secret.startswith("whsec_") or len(key) < 16:
                raise ValueError("a webhook secret is whsec_ and the base64 of its key")
        return secret

    @property
    def polls_after(self) -> float:
        """Seconds after a hand-over with no event before its status is asked."""
        if self.poll_after is not None:
            return self.poll_after
        return 60.0 if self.webhook_secret else 2.0

    @property
    def send_timeout(self) -> float:
        """The longest one hand-over may take: the window, then each try and its pause."""
        pauses = sum(retry_pause(n) for n in range(self.retries))
        return self.batch_window + self.timeout * (self.retries + 1) + pauses


def retry_pause(retry: int) -> float:
    """The pause before an upstream request's retry `retry` (0 first): 0.25 s, doubling to 2 s."""
    return min(0.25 * (1 << retry), 2.0)


# -- kind = "http": a generic HTTP carrier (docs/http-carriers.md) -----------------------

Problems = list[tuple[tuple[str | int, ...], str]]


def _refuse(title: str, problems: Problems) -> None:
    """Raise the problems found, each at its own key (pydantic puts the table's key
    in front), so that start-up names e.g. `connectors.kannel.send.query.to`."""
    if problems:
        errors: list[InitErrorDetails] = [
            {"type": "value_error", "loc": loc, "input": None, "ctx": {"error": ValueError(m)}}
            for loc, m in problems
        ]
        raise ValidationError.from_exception_data(title, errors)


def _template(text: str) -> str:
    http_template.compile_template(text)  # ValueError: an unknown placeholder, a lone brace
    return text


def _answer_locator(text: str) -> str:
    http_extract.parse_locator(text, ANSWER_KINDS)
    return text


def _callback_locator(text: str) -> str:
    http_extract.parse_locator(text)
    return text


def _header_name(name: str) -> str:
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        raise ValueError(f"{name!r} is not a header name")
    return name


HttpTemplate = Annotated[str, AfterValidator(_template)]
AnswerLocator = Annotated[str, AfterValidator(_answer_locator)]
CallbackLocator = Annotated[str, AfterValidator(_callback_locator)]


class HttpSendSettings(BaseModel):
    """`[connectors.NAME.send]`: the request of each hand-over. Every value is a template."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["GET", "POST"] = "POST"
    headers: dict[Annotated[str, AfterValidator(_header_name)], HttpTemplate] = Field(
        default_factory=dict
    )
    query: dict[str, HttpTemplate] = Field(default_factory=dict)
    form: dict[str, HttpTemplate] | None = None  # an application/x-www-form-urlencoded body
    body_json: dict[str, Any] | list[Any] | None = Field(default=None, alias="json")

    @field_validator("body_json")
    @classmethod
    def _json_templates(cls, doc: dict[str, Any] | list[Any] | None) -> Any:
        if doc is not None:
            try:
                http_template.compile_json(doc)
            except http_template.PlaceholderError as exc:
                _refuse("json", [(exc.path, exc.message)])
        return doc

    @model_validator(mode="after")
    def _one_body(self) -> HttpSendSettings:
        problems: Problems = []
        if self.method == "GET":
            for key, value in (("form", self.form), ("json", self.body_json)):
                if value is not None:
                    problems.append(((key,), 'a GET sends no body (method = "POST")'))
        elif self.form is not None and self.body_json is not None:
            problems.append((("json",), "one body: form or json, not both"))
        _refuse("send", problems)
        return self


class HttpAnswerSettings(BaseModel):
    """`[connectors.NAME.answer]`: what the carrier's answer to a hand-over means.

    Taken: a 2xx where `success` (a locator) finds a value, one of `success_values`
    when they are given; `refused`, likewise, refuses it for good whatever the
    status; `id` is where the answer gives the carrier's id of the message."""

    model_config = ConfigDict(extra="forbid")

    success: AnswerLocator | None = None
    success_values: list[str] = Field(default_factory=list)
    refused: AnswerLocator | None = None
    refused_values: list[str] = Field(default_factory=list)
    id: AnswerLocator | None = None

    @model_validator(mode="after")
    def _values_have_a_place(self) -> HttpAnswerSettings:
        problems: Problems = []
        for key, locator, values in (
            ("success_values", self.success, self.success_values),
            ("refused_values", self.refused, self.refused_values),
        ):
            if values and locator is None:
                where = key.removesuffix("_values")
                problems.append(((key,), f"values of what? set {where} (a locator) too"))
        _refuse("answer", problems)
        return self


class HttpCallbackSettings(BaseModel):
    """`[connectors.NAME.callback]`: how to read a carrier's status calls.

    `status` is where the call says the status; each value of `delivered`,
    `undeliverable` and `pending` (letter case ignored) says what it means, and
    `unknown` what any other means. `id` is where the call names the message (the
    carrier's id, as `answer.id` read it); not set when the request sends a
    `{callback_url}`, which names the hand-over itself."""

    model_config = ConfigDict(extra="forbid")

    status: CallbackLocator
    delivered: list[str] = Field(min_length=1)
    undeliverable: list[str] = Field(default_factory=list)
    pending: list[str] = Field(default_factory=list)
    unknown: Literal["pending", "undeliverable"] = "pending"
    id: CallbackLocator | None = None

    @model_validator(mode="after")
    def _each_value_once(self) -> HttpCallbackSettings:
        problems: Problems = []
        seen: dict[str, str] = {}
        for key in ("delivered", "undeliverable", "pending"):
            for number, value in enumerate(getattr(self, key)):
                before = seen.get(value.casefold())
                if before is not None:
                    problems.append(((key, number), f"{value!r} is listed under {before} already"))
                seen.setdefault(value.casefold(), key)
        _refuse("callback", problems)
        return self


def _charset(name: str) -> str:
    if http_inbound.text_codec(name) is None:
        raise ValueError(f"{name!r} is not a character set (UTF-8, ISO-8859-1, UTF-16BE, …)")
    return name


class HttpInboundSettings(BaseModel):
    """`[connectors.NAME.inbound]`: the carrier's calls that bring a message from a
    phone (docs/http-carriers.md, "Messages from phones").

    A call is inbound when `when` (a locator) finds a value, one of `when_values` when
    they are given; it must carry the connector's `callback_token`. `from`, `to` and
    `text` say where it gives the sender, our number and the text; `id` the carrier's
    id of it. A `param:` text that is not UTF-8 is decoded by the `charset` the call
    names, else by what its `coding` value means (`codings`, Kannel's by default);
    `udh` is where a part the carrier did not join gives its user data header. The
    call is answered `answer` (empty by default: Kannel sends a body to the phone)."""

    model_config = ConfigDict(extra="forbid")

    when: CallbackLocator
    when_values: list[str] = Field(default_factory=list)
    sender: CallbackLocator = Field(alias="from")
    to: CallbackLocator
    text: CallbackLocator
    id: CallbackLocator | None = None
    charset: CallbackLocator | None = None
    coding: CallbackLocator | None = None
    codings: dict[str, Annotated[str, AfterValidator(_charset)]] = Field(
        default_factory=lambda: dict(http_inbound.KANNEL_CODINGS)
    )
    udh: CallbackLocator | None = None
    answer: str = ""
    answer_type: str = Field(default="text/plain", pattern=r"^[\w.+-]+/[\w.+-]+(;.*)?$")

    @model_validator(mode="after")
    def _decoding_needs_octets(self) -> HttpInboundSettings:
        problems: Problems = []
        if not self.text.startswith("param:"):
            why = "decodes a param: text only (a json: text is Unicode already)"
            problems += [((key,), why) for key in ("charset", "coding") if getattr(self, key)]
        _refuse("inbound", problems)
        return self


class HttpCarrierSettings(CarrierSettings):
    """A carrier with a plain HTTP interface: a `[connectors.NAME]` table with
    kind = "http", filled by a `preset` or written out (docs/http-carriers.md)."""

    kind: Literal["http"]
    preset: Literal["kannel"] | None = None
    url: HttpTemplate  # http(s)://host[:port]/path, placeholders after the host
    username: str = ""  # {username}, or HTTP Basic with basic_auth
    password: str = ""
    basic_auth: bool = False
    send: HttpSendSettings = Field(default_factory=HttpSendSettings)
    answer: HttpAnswerSettings = Field(default_factory=HttpAnswerSettings)
    callback: HttpCallbackSettings | None = None  # none: taken counts as delivered
    inbound: HttpInboundSettings | None = None  # none: no messages from phones here
    # This gateway's address as the carrier reaches it; by default http://HOST:PORT
    # of the API's own `host` and `port` (docs/http-carriers.md, Callbacks).
    callback_base: str | None = None
    # The callbacks' secret; by default derived from the password and header values.
    callback_token: str | None = Field(default=None, min_length=16)
    timeout: float = Field(default=10.0, gt=0)  # one request, connecting included
    connections: int = Field(default=16, ge=1, le=256)  # requests under way at once

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return http_presets.filled(data) if isinstance(data, dict) else data

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"https?://[^\s/?#{}]+(?:[/?]|$)", url):
            raise ValueError(f"{url!r}: the carrier's URL, http(s)://host[:port]/path")
        return url

    @field_validator("callback_base")
    @classmethod
    def _base(cls, base: str | None) -> str | None:
        if base is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", base):
            raise ValueError(f"{base!r}: this gateway's base URL, http(s)://host[:port][/path]")
        return None if base is None else base.rstrip("/")

    @property
    def send_timeout(self) -> float:
        return self.timeout

    @property
    def request(self) -> http_template.RequestPlan:
        s = self.send
        return http_template.RequestPlan.compile(
            s.method, self.url, s.headers, s.query, s.form, s.body_json
        )

    @property
    def credentials(self) -> list[str]:
        """What a callback secret is derived from when `callback_token` is not set."""
        return [self.password, *self.send.headers.values()]

    @model_validator(mode="after")
    def _coherent(self) -> HttpCarrierSettings:
        _refuse("connector", self._problems())
        return self

    def _problems(self) -> Problems:
        sent = self.request.names
        found: Problems = []
        for key in ("username", "password"):
            basic = self.basic_auth and key == "username"
            if getattr(self, key) == "" and (key in sent or basic):
                found.append(((key,), f"the request sends the {key}: set it"))
        callback, token = self.callback, self.callback_token
        if callback is None:
            if "callback_url" in sent:
                why = "the request sends {callback_url}: say how to read the carrier's calls"
                found.append((("callback",), why))
        elif "callback_url" in sent:
            if callback.id is not None:
                why = "not needed: {callback_url} names the hand-over the call is about"
                found.append((("callback", "id"), why))
            if not token and not any(self.credentials):
                why = "set one: no password or header to derive the callbacks' secret from"
                found.append((("callback_token",), why))
        else:
            why = "the request sends no {callback_url}: calls name the id the answer gave"
            ids: list[tuple[str, str | None]] = [
                ("callback", callback.id),
                ("answer", self.answer.id),
            ]
            found += [((table, "id"), why) for table, locator in ids if locator is None]
            if not token:
                why = "the request sends no {callback_url}: calls carry ?token=CALLBACK_TOKEN"
                found.append((("callback_token",), why))
        return self._inbound_problems(found)

    def _inbound_problems(self, found: Problems) -> Problems:
        if self.inbound is None:
            return found
        if not self.callback_token and all(key != ("callback_token",) for key, _ in found):
            why = "inbound calls carry ?token=CALLBACK_TOKEN: set one (16 characters or more)"
            found.append((("callback_token",), why))
        return found


# Every kind of carrier's table, told apart by its `kind`.
ConnectorSettings = Annotated[
    SmppSettings | SmsbatSettings | HttpCarrierSettings, Field(discriminator="kind")
]
CONNECTOR_KINDS = ("smpp", "smsbat", "http")


class RouteRule(BaseModel):
    """One `[[routes]]` table (SPEC §9, docs/carriers.md): the first rule that matches
    a hand-over gives the connectors to try, in the order its strategy says."""

    model_config = ConfigDict(extra="forbid")

    connectors: list[str] = Field(min_length=1)
    channels: list[Literal["sms", "viber", "rcs", "flashcall"]] = Field(default_factory=list)
    prefixes: list[str] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)
    strategy: Literal["failover", "weighted", "cheapest"] = "failover"
    weights: list[float] = Field(default_factory=list)

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, prefixes: list[str]) -> list[str]:
        for prefix in prefixes:
            if not _PREFIX.fullmatch(prefix):
                raise ValueError(f"{prefix!r}: a destination prefix is '+' and 1–15 digits")
        return prefixes

    @model_validator(mode="after")
    def _weights_fit(self) -> RouteRule:
        if self.strategy != "weighted":
            if self.weights:
                raise ValueError('weights go with strategy = "weighted"')
            return self
        if len(self.weights) != len(self.connectors):
            raise ValueError(
                f'strategy = "weighted" needs one weight per connector '
                f"({len(self.connectors)}), got {len(self.weights)}"
            )
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ValueError("weights are not negative, and at least one is above 0")
        return self


class AccountSettings(BaseModel):
    """`[accounts.USERNAME]` (or `[accounts."*"]` for every account without its own
    table): what the operator decides for an account's traffic (SPEC §12)."""

    model_config = ConfigDict(extra="forbid")

    # Local time in which promotions wait (domain.schedule), e.g. "21:00-08:00".
    quiet_hours: str | None = None
    # The quiet hours' time zone: an IANA name, or "recipient" (the number's country).
    timezone: str = "UTC"
    # SMS sent back to a number whose opt-out (STOP…) or opt-in (START…) keyword came
    # in to one of the account's numbers (SPEC §11); none: no answer.
    opt_out_reply: str | None = Field(default=None, min_length=1)
    opt_in_reply: str | None = Field(default=None, min_length=1)

    @field_validator("quiet_hours")
    @classmethod
    def _window(cls, window: str | None) -> str | None:
        if window is not None:
            QuietHours.parse(window, "UTC")
        return window

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        if zone != RECIPIENT_ZONE:
            QuietHours.parse("00:00-00:01", zone)  # raises for a zone not known
        return zone

    def quiet(self) -> QuietHours | None:
        if self.quiet_hours is None:
            return None
        return QuietHours.parse(self.quiet_hours, self.timezone)


class ConsoleSettings(BaseModel):
    """`[console]`: the operators' web console at `/console` (docs/console.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    session_hours: float = Field(default=12.0, gt=0)  # a login lasts this long
    refresh_seconds: float = Field(default=10.0, ge=1)  # live parts reload this often


class InboundSettings(BaseModel):
    """`[inbound]`: messages from phones to the accounts' numbers (SPEC §10)."""

    model_config = ConfigDict(extra="forbid")

    # How far back `inReplyTo` looks for the account's latest message to the sender.
    reply_window_days: float = Field(default=7.0, gt=0)
    # Whether opt-out/opt-in keywords (STOP…, START…) change the suppression list.
    keywords: bool = True


class RateEntry(BaseModel):
    channel: str
    prefix: str = ""
    price: float
    currency: str = "USD"


def _default_rates() -> list[RateEntry]:
    return [
        RateEntry(channel="sms", price=0.05),
        RateEntry(channel="viber", price=0.03),
        RateEntry(channel="rcs", price=0.04),
        RateEntry(channel="flashcall", price=0.02),
    ]


def _default_fx() -> dict[str, float]:
    # Units of each currency per 1 USD; operators replace these with their own.
    return {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "UAH": 41.5, "PLN": 3.95}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BATGATE_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = "sqlite:///./batgate.db"
    # Connections each process keeps to PostgreSQL, and how many more it may open at peaks.
    database_pool_size: int = Field(default=8, ge=1)
    database_max_overflow: int = Field(default=0, ge=0)
    host: str = "127.0.0.1"
    port: int = 8000
    max_messages_per_request: int = 1000
    max_body_bytes: int = 16 * 1024 * 1024
    max_parts: int = 10
    default_ttl: int = 86_400
    auth_cache_seconds: float = 30.0
    # How long a process remembers whether an account has a suppression list at all
    # (store.suppressions): another process's first suppression of an account may be
    # missed this long. 0: look up every batch.
    suppression_cache_seconds: float = Field(default=1.0, ge=0)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    # SIGTERM (or Ctrl-C) to exit: requests and work under way finish within this many
    # seconds (docs/operations.md, Restarts); /readyz answers 503 from the first moment.
    shutdown_timeout: float = Field(default=20.0, gt=0)
    http: HttpSettings = Field(default_factory=HttpSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    status_cache_size: int = 100_000
    default_currency: str = "USD"
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    dispatcher: DispatcherSettings = Field(default_factory=DispatcherSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    # Which connector serves each channel (names from batgate.channels.registry).
    channels: dict[str, str] = Field(
        default_factory=lambda: {
            "sms": "simulator",
            "viber": "simulator",
            "rcs": "simulator",
            "flashcall": "simulator",
        }
    )
    # Carriers' connectors by name ([connectors.NAME]) and which take each hand-over:
    # `[[routes]]` rules (SPEC §9), or the earlier form `[routes] sms = "NAME"`
    # (channel → connector name), which overrides `channels`; what no rule routes
    # goes to the channel's connector in `channels`, by default the sandbox.
    connectors: dict[str, ConnectorSettings] = Field(default_factory=dict)
    routes: Annotated[
        Annotated[list[RouteRule], Tag("rules")] | Annotated[dict[str, str], Tag("table")],
        Discriminator(lambda value: "table" if isinstance(value, dict) else "rules"),
    ] = Field(default_factory=dict)
    # Per account by username ("*": every account without its own table).
    accounts: dict[str, AccountSettings] = Field(default_factory=dict)
    inbound: InboundSettings = Field(default_factory=InboundSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    rates: list[RateEntry] = Field(default_factory=_default_rates)
    fx: dict[str, float] = Field(default_factory=_default_fx)
    # Logs: JSON lines, or text; "auto" is text on a terminal and JSON otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: str = "INFO"
    access_log: bool = False  # one line per HTTP request (~10 µs each; see docs/operations.md)
    readiness_timeout: float = Field(default=2.0, gt=0)  # /readyz, and reads of the db gauges
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _leases_outlast_requests(self) -> Settings:
        if self.webhooks.lease_seconds <= self.webhooks.timeout:
            raise ValueError(
                "webhooks.lease_seconds must be longer than webhooks.timeout, or a slow "
                "request's event could be claimed and sent twice at once"
            )
        return self

    @model_validator(mode="after")
    def _claims_outlast_sends(self) -> Settings:
        if self.sandbox.url is None:
            return self
        d = self.dispatcher
        waves = -(-d.batch_size // max(1, d.concurrency))
        if d.lease_seconds <= self.sandbox.timeout * waves:
            raise ValueError(
                "dispatcher.lease_seconds must be longer than sandbox.timeout × "
                f"ceil(batch_size / concurrency) = {self.sandbox.timeout * waves:g} s, or a "
                "slow batch could be claimed again and handed to the carrier twice"
            )
        return self

    @model_validator(mode="after")
    def _connector_names(self) -> Settings:
        for name in self.connectors:
            if not _NAME.fullmatch(name):
                raise ValueError(
                    f"connectors.{name}: a connector name is 1–32 letters, digits, '_', '-' or '.'"
                )
            if name in SANDBOX_NAMES:
                raise ValueError(f"connectors.{name}: the name {name!r} is the sandbox's")
        return self

    @model_validator(mode="after")
    def _routes_known(self) -> Settings:
        tables = [("channels", self.channels)]
        if isinstance(self.routes, dict):
            tables.append(("routes", self.routes))
        for table, mapping in tables:
            for channel, name in mapping.items():
                if channel not in _CHANNELS:
                    raise ValueError(
                        f"{table}.{channel}: not a channel (channels: {', '.join(_CHANNELS)})"
                    )
                self._declared(f"{table}.{channel}", name)
        for number, rule in enumerate(self.route_rules()):
            for name in rule.connectors:
                self._declared(f"routes.{number}.connectors", name)
            if len(set(rule.connectors)) != len(rule.connectors):
                raise ValueError(f"routes.{number}.connectors: a connector is listed twice")
            priced = [
                n for n in rule.connectors if n in self.connectors and self.connectors[n].prices
            ]
            if rule.strategy == "cheapest" and not priced:
                raise ValueError(
                    f'routes.{number}.strategy: "cheapest" needs prices: none of '
                    f"{', '.join(rule.connectors)} has a [connectors.NAME.prices] table"
                )
        return self

    def _declared(self, key: str, name: str) -> None:
        if name not in self.connectors and name not in SANDBOX_NAMES:
            declared = ", ".join(sorted(self.connectors)) or "none"
            raise ValueError(
                f"{key}: no connector named {name!r} (declared in [connectors]: "
                f"{declared}; or 'sandbox')"
            )

    def connector_names(self) -> set[str]:
        """Every connector a hand-over may go to ("sandbox" for the sandbox): each
        channel's default and every connector of the `[[routes]]` rules."""
        names = {self.connector_for(channel) for channel in _CHANNELS}
        for rule in self.route_rules():
            names.update("sandbox" if n in SANDBOX_NAMES else n for n in rule.connectors)
        return names

    def route_rules(self) -> list[RouteRule]:
        """The `[[routes]]` rules, in order (none with the earlier `[routes]` form)."""
        return self.routes if isinstance(self.routes, list) else []

    @model_validator(mode="after")
    def _sends_within_lease(self) -> Settings:
        d = self.dispatcher
        waves = -(-d.batch_size // max(1, d.concurrency))
        for name, carrier in self.connectors.items():
            key = "submit_timeout" if isinstance(carrier, SmppSettings) else "timeout"
            if d.lease_seconds <= carrier.send_timeout * waves:
                raise ValueError(
                    f"connectors.{name}.{key}: dispatcher.lease_seconds must be longer "
                    f"than a hand-over's longest time ({carrier.send_timeout:g} s) × "
                    f"ceil(batch_size / concurrency) = {carrier.send_timeout * waves:g} s, "
                    "or a slow batch could be claimed again and submitted twice"
                )
        return self

    def quiet_hours(self) -> dict[str, QuietHours]:
        """Each account's quiet hours by username, where it has some."""
        found = {name: a.quiet() for name, a in self.accounts.items()}
        return {name: quiet for name, quiet in found.items() if quiet is not None}

    def connector_for(self, channel: str) -> str:
        """The name of the connector serving `channel` when no `[[routes]]` rule
        matches ("sandbox" for the sandbox)."""
        earlier = self.routes.get(channel) if isinstance(self.routes, dict) else None
        name = earlier or self.channels.get(channel, "sandbox")
        return "sandbox" if name in SANDBOX_NAMES else name

    @model_validator(mode="after")
    def _currencies_known(self) -> Settings:
        known = set(self.fx)
        unknown = {r.currency for r in self.rates} | {self.default_currency}
        unknown -= known
        if unknown:
            raise ValueError(f"currencies without an fx rate: {', '.join(sorted(unknown))}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("BATGATE_CONFIG")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and config file, with non-None overrides on top.

    Raises ValueError with a message naming each bad key (see :func:`describe`).
    """
    path = os.environ.get("BATGATE_CONFIG")
    if path and not os.path.isfile(path):
        raise ValueError(f"BATGATE_CONFIG names {path}, which is not a readable file")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None


def describe(exc: ValidationError) -> str:
    """One line per problem, each naming its key: `connectors.c1.port: …`."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if loc[:1] == ("routes",) and loc[1:2] in (("rules",), ("table",)):
            loc = loc[:1] + loc[2:]  # which form of `routes` it was: plain from the file
        if loc[:1] == ("connectors",) and len(loc) > 2 and loc[2] in CONNECTOR_KINDS:
            loc = loc[:2] + loc[3:]  # the table's kind, as told by its `kind`
        key = ".".join(str(part) for part in loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "not a known setting (a typo?)"
        elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            key += ".kind"  # a connector's table of no kind we know
            message = f"a connector's kind is one of {', '.join(CONNECTOR_KINDS)}"
            if error["type"] == "union_tag_invalid":
                message += f" (got {error['ctx']['tag']!r})"
        elif "input" in error and error["type"] not in ("missing", "value_error"):
            message += f" (got {error['input']!r})"
        lines.append(f"{key}: {message}" if key else message)
    return "; ".join(lines)
