"""`kind = "http"` connector tables: the Kannel preset as SPEC §9 writes it, the operator's
keys over a preset's, and every mistake stopping start-up with the key named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batgate.config import HttpCarrierSettings, Settings, load_settings

KANNEL = """
[connectors.kannel]
kind = "http"
preset = "kannel"
url = "http://127.0.0.1:13013/cgi-bin/sendsms"
username = "batgate"
password = "s3cret"
"""
PROVIDER = """
[connectors.prov]
kind = "http"
url = "https://api.example.net/v1/sms"
password = "api-key"
"""
ROUTE = """
[routes]
sms = "kannel"
"""


Load = Callable[[str], Settings]


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Load:
    for name in ("BATGATE_PORT", "BATGATE_HOST", "BATGATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)

    def load(toml: str) -> Settings:
        path = tmp_path / "batgate.toml"
        path.write_text(toml)
        monkeypatch.setenv("BATGATE_CONFIG", str(path))
        return load_settings()

    return load


def http_table(settings: Settings, name: str = "kannel") -> HttpCarrierSettings:
    table = settings.connectors[name]
    assert isinstance(table, HttpCarrierSettings)
    return table


def test_the_spec_example_fills_the_kannel_preset(load: Load) -> None:
    table = http_table(load(KANNEL + ROUTE))
    assert table.send.method == "GET"
    assert table.send.query["dlr-url"] == "{callback_url}&type=%d"
    assert table.send.query["dlr-mask"] == "19"
    assert table.answer.success == "regex:^[03]: "
    assert table.callback is not None and table.callback.status == "param:type"
    assert table.request.names >= {"username", "password", "to", "text", "callback_url"}
    assert table.send_timeout == 10.0


def test_the_operators_keys_win_over_the_presets(load: Load) -> None:
    table = http_table(
        load(
            KANNEL
            + """
timeout = 3
[connectors.kannel.send.query]
dlr-mask = "31"
smsc = "carrier-a"
[connectors.kannel.callback]
unknown = "undeliverable"
"""
        )
    )
    assert table.timeout == 3
    assert table.send.method == "GET"
    assert table.send.query["dlr-mask"] == "31"
    assert table.send.query["smsc"] == "carrier-a"
    assert table.send.query["to"] == "{to}"  # the rest of the preset's query stays
    assert table.callback is not None
    assert table.callback.unknown == "undeliverable"
    assert table.callback.delivered == ["1"]


def test_a_provider_written_out(load: Load) -> None:
    table = http_table(
        load(
            PROVIDER
            + """
callback_base = "https://gw.example.net/batgate/"
[connectors.prov.send]
headers = { Authorization = "Bearer {password}" }
json = { messages = [{ to = "{to}", text = "{text}", parts = "{parts}" }], cb = "{callback_url}" }
[connectors.prov.answer]
success = "json:/status"
success_values = ["queued"]
id = "json:/id"
[connectors.prov.callback]
status = "json:/status"
delivered = ["DELIVERED"]
undeliverable = ["FAILED"]
"""
        ),
        "prov",
    )
    assert table.callback_base == "https://gw.example.net/batgate"
    assert table.send.method == "POST"
    assert table.request.names == {"password", "to", "text", "parts", "callback_url"}


# (id, the table, the complaint: one line per problem, each naming its key)
MISTAKES = [
    (
        "unknown placeholder in the query",
        KANNEL + '[connectors.kannel.send.query]\nto = "{too}"\n',
        "connectors.kannel.send.query.to: unknown placeholder {too} (known: {to},",
    ),
    (
        "unknown placeholder deep in a JSON body",
        PROVIDER
        + '[connectors.prov.send]\njson = { messages = [{ to = "{to}" }, { body = "{txt}" }] }\n',
        "connectors.prov.send.json.messages.1.body: unknown placeholder {txt}",
    ),
    (
        "unknown placeholder in a header",
        PROVIDER + '[connectors.prov.send.headers]\nAuthorization = "Bearer {api_key}"\n',
        "connectors.prov.send.headers.Authorization: unknown placeholder {api_key}",
    ),
    (
        "a lone brace",
        PROVIDER + '[connectors.prov.send.query]\nx = "{oops"\n',
        "connectors.prov.send.query.x: '{oops': a brace without its pair",
    ),
    (
        "unknown placeholder in the URL",
        PROVIDER.replace("/v1/sms", "/{account}/sms"),
        "connectors.prov.url: unknown placeholder {account}",
    ),
    (
        "not an http URL",
        PROVIDER.replace("https://api.example.net", "ftp://api.example.net"),
        "connectors.prov.url: 'ftp://api.example.net/v1/sms': the carrier's URL",
    ),
    (
        "a placeholder in the host",
        PROVIDER.replace("api.example.net", "{username}.example.net"),
        "connectors.prov.url: 'https://{username}.example.net/v1/sms': the carrier's URL",
    ),
    (
        "a bad answer locator",
        PROVIDER + '[connectors.prov.answer]\nid = "id"\n',
        "connectors.prov.answer.id: 'id': a locator is one of json:…, regex:…, header:…",
    ),
    (
        "a call's parameter in an answer",
        PROVIDER + '[connectors.prov.answer]\nid = "param:id"\n',
        "connectors.prov.answer.id: 'param:id': a locator is one of",
    ),
    (
        "a bad regex",
        PROVIDER + '[connectors.prov.answer]\nsuccess = "regex:(ok"\n',
        "connectors.prov.answer.success: 'regex:(ok': not a regular expression",
    ),
    (
        "values without a locator",
        PROVIDER + '[connectors.prov.answer]\nsuccess_values = ["ok"]\n',
        "connectors.prov.answer.success_values: values of what? set success (a locator) too",
    ),
    (
        "a bad callback locator",
        KANNEL + '[connectors.kannel.callback]\nstatus = "json:status"\n',
        "connectors.kannel.callback.status: 'json:status': a JSON pointer starts with '/'",
    ),
    (
        "no delivered value",
        KANNEL + "[connectors.kannel.callback]\ndelivered = []\n",
        "connectors.kannel.callback.delivered: List should have at least 1 item",
    ),
    (
        "a status value in two lists",
        KANNEL + '[connectors.kannel.callback]\npending = ["8", "1"]\n',
        "connectors.kannel.callback.pending.1: '1' is listed under delivered already",
    ),
    (
        "a bad unknown",
        KANNEL + '[connectors.kannel.callback]\nunknown = "delivered"\n',
        "connectors.kannel.callback.unknown: Input should be 'pending' or 'undeliverable'",
    ),
    (
        "a body with GET",
        PROVIDER + '[connectors.prov.send]\nmethod = "GET"\nform = { to = "{to}" }\n',
        'connectors.prov.send.form: a GET sends no body (method = "POST")',
    ),
    (
        "two bodies",
        PROVIDER + '[connectors.prov.send]\nform = { to = "{to}" }\njson = { to = "{to}" }\n',
        "connectors.prov.send.json: one body: form or json, not both",
    ),
    (
        "a callback_url nobody reads",
        PROVIDER + '[connectors.prov.send.query]\nreport = "{callback_url}"\n',
        "connectors.prov.callback: the request sends {callback_url}: say how to read",
    ),
    (
        "a callback id with a callback_url",
        KANNEL + '[connectors.kannel.callback]\nid = "param:id"\n',
        "connectors.kannel.callback.id: not needed: {callback_url} names the hand-over",
    ),
    (
        "no secret to make tokens with",
        KANNEL.replace('password = "s3cret"', "")
        + '[connectors.kannel.send.query]\npassword = "fixed"\n',
        "connectors.kannel.callback_token: set one: no password or header",
    ),
    (
        "callbacks set at the carrier, without ids or a token",
        PROVIDER + '[connectors.prov.callback]\nstatus = "json:/s"\ndelivered = ["ok"]\n',
        "connectors.prov.callback.id: the request sends no {callback_url}: calls name the id "
        "the answer gave; connectors.prov.answer.id: the request sends no {callback_url}: "
        "calls name the id the answer gave; connectors.prov.callback_token: the request sends "
        "no {callback_url}: calls carry ?token=CALLBACK_TOKEN",
    ),
    (
        "the kannel preset without credentials",
        KANNEL.replace(
            'username = "batgate"\npassword = "s3cret"', 'callback_token = "0123456789abcdef"'
        ),
        "connectors.kannel.username: the request sends the username: set it; "
        "connectors.kannel.password: the request sends the password: set it",
    ),
    (
        "basic auth without a username",
        PROVIDER + "basic_auth = true\n",
        "connectors.prov.username: the request sends the username: set it",
    ),
    (
        "an unknown preset",
        KANNEL.replace('preset = "kannel"', 'preset = "jasmin"'),
        "connectors.kannel.preset: Input should be 'kannel' (got 'jasmin')",
    ),
    ("a typo", PROVIDER + 'sned = "x"\n', "connectors.prov.sned: not a known setting (a typo?)"),
    (
        "a typo in a table",
        PROVIDER + '[connectors.prov.send]\nqeury = { to = "{to}" }\n',
        "connectors.prov.send.qeury: not a known setting (a typo?)",
    ),
    (
        "a short callback_token",
        KANNEL + 'callback_token = "short"\n',
        "connectors.kannel.callback_token: String should have at least 16 characters",
    ),
    (
        "a bad callback_base",
        KANNEL + 'callback_base = "gw.example.net"\n',
        "connectors.kannel.callback_base: 'gw.example.net': this gateway's base URL",
    ),
    (
        "a bad header name",
        PROVIDER + '[connectors.prov.send.headers]\n"X Key" = "{password}"\n',
        "connectors.prov.send.headers.X Key.[key]: 'X Key' is not a header name",
    ),
    (
        "a timeout the lease cannot hold",
        KANNEL + "timeout = 30\n",
        "connectors.kannel.timeout: dispatcher.lease_seconds must be longer",
    ),
]


@pytest.mark.parametrize(
    ("toml", "complaint"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_a_mistake_stops_start_up_naming_its_key(load: Load, toml: str, complaint: str) -> None:
    with pytest.raises(ValueError) as caught:
        load(toml)
    assert str(caught.value).startswith(complaint), str(caught.value)


def test_the_guides_examples_load(load: Load) -> None:
    """Every connector table of docs/http-carriers.md, as written there."""
    guide = Path(__file__).parents[2] / "docs" / "http-carriers.md"
    blocks = [b.split("```", 1)[0] for b in guide.read_text().split("```toml\n")[1:]]
    tables = [b for b in blocks if "kind = " in b]
    assert len(tables) == 4
    loaded = [
        http_table(load(block), block.split("[connectors.", 1)[1].split("]")[0]) for block in tables
    ]
    preset, written_out = loaded[:2]
    assert preset.preset == "kannel" and written_out.preset is None
    for table in ("send", "answer", "callback"):
        assert getattr(preset, table) == getattr(written_out, table), table
