"""Signed batches (ingest.auth): every rule with its status and reason, keys never shown."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from httpx2 import Response

from safety_nexus.api.app import create_app
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.errors import ConfigError, IngestError
from safety_nexus.ingest.auth import SIGNATURE, Verified, Verifier, canonical, sign
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime
from safety_nexus.site.load import load
from safety_nexus.site.schema import Source
from safety_nexus.store.sqlite import SqliteStore

NOW = 1_780_000_000.0
HMAC_KEY = "hmac-secret-0123456789abcdef-never-shown"
ED_PRIVATE = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ED_PUBLIC_B64 = base64.b64encode(
    ED_PRIVATE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
).decode()
BODY = json.dumps({"samples": [{"signal": "pump-1.pressure", "time": NOW, "value": 4.8}]}).encode()


def _sources(*, required: bool = True) -> list[Source]:
    return [
        Source.model_validate(
            {
                "id": "gw-hmac",
                "kind": "http",
                "auth": {"hmac_key_env": "GW_KEY", "max_age": "30s", "max_skew": "5s"},
            }
        ),
        Source.model_validate(
            {
                "id": "gw-ed",
                "kind": "http",
                "auth": {"ed25519_public_key": ED_PUBLIC_B64, "required": required},
            }
        ),
        Source.model_validate({"id": "legacy", "kind": "http"}),
    ]


@pytest.fixture
def store() -> Iterator[SqliteStore]:
    s = SqliteStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def verifier(store: SqliteStore, clock: ManualClock) -> Verifier:
    return Verifier(_sources(), clock=clock, store=store, environ={"GW_KEY": HMAC_KEY})


def _hmac(
    sequence: int, ts: float = NOW, body: bytes = BODY, key: str = HMAC_KEY
) -> dict[str, str]:
    return sign(body, source="gw-hmac", sequence=sequence, timestamp=ts, hmac_key=key.encode())


def _ed(sequence: int, ts: float = NOW, body: bytes = BODY) -> dict[str, str]:
    return sign(body, source="gw-ed", sequence=sequence, timestamp=ts, ed25519_key=ED_PRIVATE)


def _refused(verifier: Verifier, headers: dict[str, str], body: bytes = BODY) -> IngestError:
    with pytest.raises(IngestError) as caught:
        verifier.check(headers, body)
    assert HMAC_KEY not in str(caught.value)
    assert ED_PUBLIC_B64 not in str(caught.value)
    return caught.value


def test_signature_is_hmac_of_the_documented_canonical_string() -> None:
    # Computed independently of `sign`, from the module docstring's definition.
    digest = hashlib.sha256(BODY).hexdigest()
    text = f"gw-hmac\n7\n{int(NOW)}\n{digest}".encode()
    expected = hmac.new(HMAC_KEY.encode(), text, hashlib.sha256).hexdigest()
    assert _hmac(7)[SIGNATURE] == f"hmac-sha256={expected}"
    assert canonical("gw-hmac", 7, int(NOW), BODY) == text


def test_hmac_and_ed25519_batches_are_accepted_and_commit_advances(
    verifier: Verifier, store: SqliteStore
) -> None:
    for make, source in ((_hmac, "gw-hmac"), (_ed, "gw-ed")):
        verified = verifier.check(make(1), BODY)
        assert (verified.source, verified.sequence) == (source, 1)
        assert store.last_sequence(source) is None  # not before the batch is accepted
        _accept(store, verified)
        assert store.last_sequence(source) == 1
        assert verifier.check(make(2), BODY).sequence == 2


def test_pem_public_key_is_accepted(store: SqliteStore, clock: ManualClock) -> None:
    pem = ED_PRIVATE.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    source = Source.model_validate(
        {"id": "gw-ed", "kind": "http", "auth": {"ed25519_public_key": pem.decode()}}
    )
    verifier = Verifier([source], clock=clock, store=store)
    assert verifier.check(_ed(1), BODY).sequence == 1


@pytest.mark.parametrize(
    ("case", "status", "reason", "fragment"),
    [
        ("forged body", 401, "forged", "does not verify"),
        ("forged signature", 401, "forged", "does not verify"),
        ("wrong key", 401, "forged", "does not verify"),
        ("ed25519 forged body", 401, "forged", "does not verify"),
        ("scheme of the other key", 401, "forged", "does not verify"),
        ("tampered sequence header", 401, "forged", "does not verify"),
        ("too old", 401, "too_old", "limit is 30s"),
        ("future", 401, "future", "allowed clock skew is 5s"),
        ("unknown source", 401, "unknown_source", "unknown source 'nobody'"),
        ("unsigned where required", 401, "unsigned", "must sign"),
        ("anonymous where signing is required", 401, "unsigned", "not signed"),
        ("signature without a key", 401, "no_key", "no key"),
        ("bad sequence header", 400, "bad_auth_header", "non-negative integer"),
        ("missing timestamp header", 400, "bad_auth_header", "unix seconds"),
    ],
)
def test_refusals(verifier: Verifier, case: str, status: int, reason: str, fragment: str) -> None:
    body = BODY
    if case == "forged body":
        headers, body = _hmac(1), BODY.replace(b"4.8", b"9.8")
    elif case == "forged signature":
        headers = _hmac(1)
        sig = headers[SIGNATURE]
        headers[SIGNATURE] = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    elif case == "wrong key":
        headers = _hmac(1, key="another-key")
    elif case == "ed25519 forged body":
        headers, body = _ed(1), BODY + b" "
    elif case == "scheme of the other key":
        headers = _ed(1)
        headers["X-Nexus-Source"] = "gw-hmac"
    elif case == "tampered sequence header":
        headers = _hmac(1)
        headers["X-Nexus-Sequence"] = "2"
    elif case == "too old":
        headers = _hmac(1, ts=NOW - 31)
    elif case == "future":
        headers = _hmac(1, ts=NOW + 6)
    elif case == "unknown source":
        headers = {**_hmac(1), "X-Nexus-Source": "nobody"}
    elif case == "unsigned where required":
        headers = {"X-Nexus-Source": "gw-hmac"}
    elif case == "anonymous where signing is required":
        headers = {}
    elif case == "signature without a key":
        headers = {**_hmac(1), "X-Nexus-Source": "legacy"}
    elif case == "bad sequence header":
        headers = {**_hmac(1), "X-Nexus-Sequence": "-3"}
    else:
        headers = _hmac(1)
        del headers["X-Nexus-Timestamp"]
    err = _refused(verifier, headers, body)
    assert (err.status, err.reason) == (status, reason)
    assert fragment in str(err)


def test_limits_are_inclusive_at_the_edges(verifier: Verifier) -> None:
    assert verifier.check(_hmac(1, ts=NOW - 30), BODY).sequence == 1
    assert verifier.check(_hmac(1, ts=NOW + 5), BODY).sequence == 1


def test_older_sequences_are_409(verifier: Verifier, store: SqliteStore) -> None:
    _accept(store, verifier.check(_hmac(5), BODY))
    for sequence in (4, 0):
        err = _refused(verifier, _hmac(sequence))
        assert (err.status, err.reason) == (409, "replayed")
        assert "last accepted (5)" in str(err)
    # The last number itself passes here: the runtime tells a resend from a replay by the
    # body's digest (tests/pipeline/test_ledger.py).
    assert verifier.check(_hmac(5), BODY).sequence == 5
    assert verifier.check(_hmac(6), BODY).sequence == 6


def test_a_refused_batch_does_not_advance_the_sequence(verifier: Verifier) -> None:
    verifier.check(_hmac(1), BODY)  # checked, never committed: the batch was not accepted
    assert verifier.check(_hmac(1), BODY).sequence == 1


def test_unsigned_sources_may_number_their_batches(store: SqliteStore, clock: ManualClock) -> None:
    optional = Verifier(_sources(required=False)[1:], clock=clock, store=store)
    got = optional.check({"X-Nexus-Source": "gw-ed", "X-Nexus-Sequence": "7"}, BODY)
    assert (got.source, got.sequence) == ("gw-ed", 7)
    _accept(store, got)
    err = _refused(optional, {"X-Nexus-Source": "gw-ed", "X-Nexus-Sequence": "6"})
    assert (err.status, err.reason) == (409, "replayed")
    err = _refused(optional, {"X-Nexus-Source": "gw-ed", "X-Nexus-Sequence": "x"})
    assert (err.status, err.reason) == (400, "bad_auth_header")


def test_sources_that_do_not_require_signing_still_accept_unsigned(
    store: SqliteStore, clock: ManualClock
) -> None:
    optional = Verifier(_sources(required=False)[1:], clock=clock, store=store)
    assert optional.check({}, BODY).source is None
    assert optional.check({"X-Nexus-Source": "gw-ed"}, BODY).source == "gw-ed"
    assert optional.check({"X-Nexus-Source": "legacy"}, BODY).sequence is None
    err = _refused(optional, {**_ed(1), "X-Nexus-Source": "gw-ed"}, BODY + b"x")
    assert err.reason == "forged"  # a signature that is given is still checked


def test_sequence_survives_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "nexus.db"
    store = SqliteStore(path)
    first = Verifier(_sources(), clock=clock, store=store, environ={"GW_KEY": HMAC_KEY})
    _accept(store, first.check(_hmac(41), BODY))
    store.close()
    store = SqliteStore(path)
    try:
        again = Verifier(_sources(), clock=clock, store=store, environ={"GW_KEY": HMAC_KEY})
        err = _refused(again, _hmac(40))
        assert (err.status, err.reason) == (409, "replayed")
        assert again.check(_hmac(42), BODY).sequence == 42
    finally:
        store.close()


def test_missing_or_empty_key_is_a_config_error(store: SqliteStore, clock: ManualClock) -> None:
    with pytest.raises(ConfigError, match="environment variable 'GW_KEY' is not set"):
        Verifier(_sources(), clock=clock, store=store, environ={})
    with pytest.raises(ConfigError, match="is not set or empty"):
        Verifier(_sources(), clock=clock, store=store, environ={"GW_KEY": "  "})


def test_keys_never_appear_in_repr_messages_or_logs(
    tmp_path: Path, store: SqliteStore, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key_file = tmp_path / "gw.key"
    key_file.write_text(HMAC_KEY + "\n", encoding="utf-8")
    sources = [
        Source.model_validate(
            {"id": "gw-file", "kind": "http", "auth": {"hmac_key_file": key_file}}
        ),
        _sources()[1],
    ]
    verifier = Verifier(sources, clock=clock, store=store)
    headers = sign(BODY, source="gw-file", sequence=1, timestamp=NOW, hmac_key=HMAC_KEY.encode())
    _accept(store, verifier.check(headers, BODY))
    shown = [repr(sources), str(sources), repr(verifier.__dict__), caplog.text]
    refused = ({**headers, SIGNATURE: "hmac-sha256=00"}, _hmac(2, ts=NOW - 100))
    shown += [str(_refused(verifier, bad)) for bad in refused]
    for text in shown:
        assert HMAC_KEY not in text
        assert ED_PUBLIC_B64 not in text
    # and a key that does not parse is refused without being quoted
    short = base64.b64encode(ED_PRIVATE.public_key().public_bytes_raw()[:31]).decode()
    with pytest.raises(ValueError, match="decodes to 31 bytes") as caught:
        Source.model_validate({"id": "x", "kind": "http", "auth": {"ed25519_public_key": short}})
    assert short not in str(caught.value)
    assert ED_PUBLIC_B64 not in repr(_sources()[1])


# -- through the HTTP route --------------------------------------------------------------------


@pytest.fixture
def signed_runtime(
    tmp_path: Path, demo_city: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    """The demo city fed by HTTP, its field gateway signing with an HMAC key from a key file."""
    (tmp_path / "gw.key").write_text(HMAC_KEY, encoding="utf-8")
    text = demo_city.read_text(encoding="utf-8")
    plain = '  - {id: field-gateway, kind: http, signals: ["*"],'
    assert plain in text
    text = text.replace(
        plain,
        '  - {id: field-gateway, kind: http, signals: ["*"], auth: {hmac_key_file: gw.key},',
    )
    site = tmp_path / "site.yaml"
    site.write_text(text, encoding="utf-8")
    runtime = build_runtime(RuntimeSettings(site=site, data_dir=tmp_path / "data", source="http"))
    runtime.start()
    yield runtime
    runtime.stop()


def test_route_accepts_signed_and_refuses_the_rest(
    signed_runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    start = signed_runtime.clock.now() - 100

    def body(batch: int) -> bytes:
        samples = [
            {"signal": "main-1.pressure", "time": start + 3 * batch + i, "value": 4.5}
            for i in range(3)
        ]
        return json.dumps({"source": "field-gateway", "samples": samples}).encode()

    def signed(sequence: int, content: bytes) -> dict[str, str]:
        ts = signed_runtime.clock.now()
        key = HMAC_KEY.encode()
        return sign(content, source="field-gateway", sequence=sequence, timestamp=ts, hmac_key=key)

    with TestClient(create_app(signed_runtime)) as client:

        def post(headers: dict[str, str], content: bytes) -> Response:
            return client.post(
                "/api/v1/telemetry",
                content=content,
                headers={"content-type": "application/json", **headers},
            )

        r = post(signed(1, body(1)), body(1))
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == 3
        # signed over the content, then compressed
        r = post({**signed(2, body(2)), "content-encoding": "gzip"}, gzip.compress(body(2)))
        assert r.status_code == 202, r.text
        # authentic but refused for its content: the sequence does not advance...
        r = post(signed(3, body(0)), body(0))
        assert (r.status_code, r.json()["reason"]) == (409, "out_of_order")
        # ...so the corrected batch may reuse it
        r = post(signed(3, body(3)), body(3))
        assert r.status_code == 202, r.text
        cases = [
            (post(signed(3, body(4)), body(4)), 409, "replayed"),
            (post(signed(4, body(4)), body(4) + b" "), 401, "forged"),
            (post({}, body(4)), 401, "unsigned"),
            (post({"X-Nexus-Source": "field-gateway"}, body(4)), 401, "unsigned"),
            (
                post({**signed(4, body(4)), "X-Nexus-Source": "ghost"}, body(4)),
                401,
                "unknown_source",
            ),
        ]
        metrics = client.get("/metrics").text
    for r, status, reason in cases:
        assert r.status_code == status, r.text
        assert r.json()["reason"] == reason
        assert HMAC_KEY not in r.text
    for reason, n in (("replayed", 1), ("forged", 1), ("unsigned", 2), ("unknown_source", 1)):
        assert f'nexus_ingest_rejected_total{{reason="{reason}"}} {float(n)}' in metrics
    assert HMAC_KEY not in caplog.text
    assert signed_runtime.store.last_sequence("field-gateway") == 3


def test_site_errors_about_keys_do_not_quote_them() -> None:
    fixtures = Path(__file__).resolve().parents[1] / "site" / "fixtures"
    text = (fixtures / "tiny.good.yaml").read_text(encoding="utf-8")
    short = base64.b64encode(bytes(range(31))).decode()
    for auth, fragment in (
        (f"{{ed25519_public_key: '{short}'}}", "decodes to 31 bytes"),
        (f"{{hmac_key: '{HMAC_KEY}'}}", "unknown field 'hmac_key'"),
    ):
        bad = text.replace('signals: ["pump-*"]}', f'signals: ["pump-*"], auth: {auth}}}')
        assert bad != text
        with pytest.raises(ConfigError) as caught:
            load(bad)
        shown = str(caught.value) + repr(caught.value.issues)
        assert fragment in shown
        assert short not in shown
        assert HMAC_KEY not in shown


def test_line_protocol_route_checks_signatures_too(signed_runtime: Runtime) -> None:
    t = int(signed_runtime.clock.now()) - 50
    content = f"main-1 pressure=4.5 {t}\nmain-1 pressure=4.6 {t + 1}\n".encode()
    key = HMAC_KEY.encode()
    with TestClient(create_app(signed_runtime)) as client:

        def write(headers: dict[str, str], body: bytes = content) -> Response:
            return client.post(
                "/api/v1/write",
                params={"precision": "s"},
                content=body,
                headers={"content-type": "text/plain", **headers},
            )

        now = signed_runtime.clock.now()
        r = write(sign(content, source="field-gateway", sequence=1, timestamp=now, hmac_key=key))
        assert r.status_code == 204, r.text
        r = write({})
        assert (r.status_code, r.json()["reason"]) == (401, "unsigned")
        # The same batch again (our answer was lost): accepted once, answered as before.
        r = write(sign(content, source="field-gateway", sequence=1, timestamp=now, hmac_key=key))
        assert r.status_code == 204, r.text
        accepted = signed_runtime.metrics.registry.get_sample_value(
            "nexus_ingest_accepted_samples_total", {"source": "field-gateway"}
        )
        assert accepted == 2
        other = content.replace(b"4.6", b"9.9")
        r = write(
            sign(other, source="field-gateway", sequence=1, timestamp=now, hmac_key=key), other
        )
        assert (r.status_code, r.json()["reason"]) == (409, "replayed")
    assert signed_runtime.store.last_sequence("field-gateway") == 1


def _accept(store: SqliteStore, verified: Verified) -> None:
    """What the runtime does once it has taken a batch (pipeline.ledger)."""
    assert verified.source is not None
    assert verified.sequence is not None
    assert store.advance_sequence(verified.source, verified.sequence, time=NOW)
