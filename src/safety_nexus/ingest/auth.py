"""Signed batches: who sent a batch, that nobody changed it, and that it is not a replay.

A source declares its key in the site file (`sources[].auth`, see `site.schema.SourceAuth`):
an HMAC-SHA256 secret (named by an environment variable or a key file) or an Ed25519 public
key. A sender signs every HTTP batch with four headers:

    X-Nexus-Source:    <source id>              the site file's `sources[].id`
    X-Nexus-Sequence:  <int>                    strictly increasing per source (1, 2, 3, ...)
    X-Nexus-Timestamp: <unix seconds>           when it was signed (an integer or a decimal)
    X-Nexus-Signature: hmac-sha256=<hex>        HMAC-SHA256(key, canonical), lower-case hex
                    or ed25519=<base64>         Ed25519 signature of canonical, standard base64

over the canonical string (UTF-8, "\\n" separated, no trailing newline):

    canonical = f"{source}\\n{sequence}\\n{timestamp}\\n" + sha256(body).hexdigest()

where `sequence` and `timestamp` are the header values exactly as sent and `body` is the HTTP
body's content: the bytes sent, or with `Content-Encoding: gzip` the bytes before compressing
(so a gateway signs first and may then compress). `sign()` below is a complete sender.

The checks, in order, and what a refused batch gets (every refusal is counted in
`nexus_ingest_rejected_total{reason}`):

    no X-Nexus-Source, while some source requires signing   401 unsigned
    X-Nexus-Source names no source of the site                401 unknown_source
    no X-Nexus-Signature, and the source requires signing     401 unsigned
    a signature, but the source has no key                    401 no_key
    a sequence or timestamp header missing or malformed       400 bad_auth_header
    the signature does not verify (body, headers or key)      401 forged
    timestamp older than the source's `max_age`               401 too_old
    timestamp more than `max_skew` ahead of our clock         401 future
    sequence below the last accepted one (or equal to it      409 replayed
      with a different body: see the runtime)

Authentication failures are 401 (the request does not prove who sent it); a replay is 409
because the request is authentic but conflicts with what was already accepted. The signature is
checked before the timestamp and the sequence so that an unauthenticated caller learns nothing
about a source's state. Without any signing source, unsigned batches (with or without
X-Nexus-Source) are accepted as before.

The last accepted sequence of each source is kept in the store, so that a restart does not open
a replay window. The runtime records it, under its ingest lock and after writing the batch
ahead, together with the batch's digest (`pipeline.runtime`): a resend of the last accepted
batch, same number and same body, is answered as a duplicate and not processed twice (the
sender lost our answer); any other number at or below the last is a replay (409). A source
without a key may also send X-Nexus-Source and X-Nexus-Sequence (no signature) to get the same
exactly-once delivery. Messages name the source and the rule, never a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from safety_nexus.core.clock import Clock
from safety_nexus.core.errors import IngestError
from safety_nexus.site.keys import ed25519_public_key, hmac_key_from_env, hmac_key_from_file
from safety_nexus.site.schema import Source, SourceAuth

__all__ = [
    "SEQUENCE",
    "SIGNATURE",
    "SOURCE",
    "TIMESTAMP",
    "SequenceStore",
    "Verified",
    "Verifier",
    "canonical",
    "sign",
]

SOURCE = "X-Nexus-Source"
SEQUENCE = "X-Nexus-Sequence"
TIMESTAMP = "X-Nexus-Timestamp"
SIGNATURE = "X-Nexus-Signature"

_HMAC = "hmac-sha256"
_ED25519 = "ed25519"


class SequenceStore(Protocol):
    """Where the last accepted sequence of each source survives restarts (`SqliteStore`)."""

    def last_sequence(self, source: str) -> int | None: ...

    def advance_sequence(
        self, source: str, sequence: int, *, time: float, digest: str = ""
    ) -> bool: ...


def canonical(source: str, sequence: str | int, timestamp: str | float, body: bytes) -> bytes:
    """The bytes that are signed (see the module docstring)."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{source}\n{sequence}\n{timestamp}\n{digest}".encode()


def sign(
    body: bytes,
    *,
    source: str,
    sequence: int,
    timestamp: float,
    hmac_key: bytes | None = None,
    ed25519_key: Ed25519PrivateKey | None = None,
) -> dict[str, str]:
    """The four headers that sign `body`, with exactly one of `hmac_key` or `ed25519_key`.

    >>> headers = sign(b"{}", source="gw", sequence=1, timestamp=1700000000, hmac_key=b"k")
    >>> sorted(headers)
    ['X-Nexus-Sequence', 'X-Nexus-Signature', 'X-Nexus-Source', 'X-Nexus-Timestamp']
    """
    if (hmac_key is None) == (ed25519_key is None):
        raise ValueError("sign with exactly one of hmac_key or ed25519_key")
    ts = str(int(timestamp)) if float(timestamp).is_integer() else repr(float(timestamp))
    message = canonical(source, sequence, ts, body)
    if hmac_key is not None:
        signature = f"{_HMAC}={hmac.new(hmac_key, message, hashlib.sha256).hexdigest()}"
    else:
        assert ed25519_key is not None
        signature = f"{_ED25519}={base64.b64encode(ed25519_key.sign(message)).decode('ascii')}"
    return {SOURCE: source, SEQUENCE: str(sequence), TIMESTAMP: ts, SIGNATURE: signature}


@dataclass(frozen=True, slots=True)
class Verified:
    """A batch that passed the checks: `commit` it once it is accepted. `sequence` is None for
    an unsigned batch, which has nothing to commit."""

    source: str | None
    sequence: int | None = None


class _Key:
    """One source's key. `repr` shows the kind only."""

    __slots__ = ("_ed25519", "_hmac")

    def __init__(self, hmac_key: bytes | None, ed: Ed25519PublicKey | None) -> None:
        self._hmac = hmac_key
        self._ed25519 = ed

    def __repr__(self) -> str:
        return f"<{_HMAC if self._hmac is not None else _ED25519} key>"

    def verify(self, scheme: str, value: str, message: bytes) -> bool:
        if self._hmac is not None:
            if scheme != _HMAC:
                return False
            expected = hmac.new(self._hmac, message, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, value.lower())
        if scheme != _ED25519 or self._ed25519 is None:
            return False
        try:
            raw = base64.b64decode(value, validate=True)
            self._ed25519.verify(raw, message)
        except (binascii.Error, ValueError, InvalidSignature):
            return False
        return True


def _key(source: Source, auth: SourceAuth, environ: Mapping[str, str] | None) -> _Key:
    if auth.hmac_key_env is not None:
        return _Key(hmac_key_from_env(source.id, auth.hmac_key_env, environ), None)
    if auth.hmac_key_file is not None:
        return _Key(hmac_key_from_file(source.id, auth.hmac_key_file), None)
    assert auth.ed25519_public_key is not None  # SourceAuth guarantees exactly one key
    return _Key(None, ed25519_public_key(auth.ed25519_public_key.get_secret_value()))


class Verifier:
    """Checks the signature headers of raw HTTP batches against the site's sources.

    Keys are read once, here: a missing environment variable or key file is a `ConfigError`
    at start-up, not a 401 on the first batch. `clock` is the time `max_age` and `max_skew`
    are measured against.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        clock: Clock,
        store: SequenceStore,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._clock = clock
        self._store = store
        self._sources = {s.id: s for s in sources}
        self._keys = {s.id: _key(s, s.auth, environ) for s in sources if s.auth is not None}
        self._any_required = any(s.auth is not None and s.auth.required for s in sources)

    @property
    def enabled(self) -> bool:
        """Whether any source has a key (without one, every batch passes unsigned)."""
        return bool(self._keys)

    def check(self, headers: Mapping[str, str], body: bytes) -> Verified:
        """Check a batch's headers against its raw `body`; `IngestError` if it is refused.

        `headers` is looked up case-insensitively only if it does so itself (Starlette's
        headers do); a plain dict must use the canonical names above.
        """
        source_id = headers.get(SOURCE)
        signature = headers.get(SIGNATURE)
        if source_id is None:
            if self._any_required:
                raise IngestError(
                    f"batch is not signed; this site requires the {SOURCE} and {SIGNATURE} headers",
                    "unsigned",
                    401,
                )
            return Verified(None)
        source = self._sources.get(source_id)
        if source is None:
            raise IngestError(
                f"unknown source '{source_id[:64]}' in {SOURCE}", "unknown_source", 401
            )
        auth, key = source.auth, self._keys.get(source.id)
        if signature is None:
            if auth is not None and auth.required:
                raise IngestError(
                    f"source '{source.id}' must sign its batches ({SIGNATURE} is missing)",
                    "unsigned",
                    401,
                )
            # An unsigned source may still number its batches, for exactly-once delivery.
            raw = headers.get(SEQUENCE)
            if raw is None:
                return Verified(source.id)
            sequence = _sequence(raw)
            self._check_sequence(source.id, sequence)
            return Verified(source.id, sequence)
        if auth is None or key is None:
            raise IngestError(
                f"source '{source.id}' has no key to check a signature against", "no_key", 401
            )
        raw_sequence, raw_timestamp = headers.get(SEQUENCE), headers.get(TIMESTAMP)
        sequence = _sequence(raw_sequence)
        timestamp = _timestamp(raw_timestamp)
        assert raw_sequence is not None
        assert raw_timestamp is not None
        scheme, _, value = signature.strip().partition("=")
        message = canonical(source.id, raw_sequence, raw_timestamp, body)
        if not value or not key.verify(scheme.strip().lower(), value.strip(), message):
            raise IngestError(
                f"signature of source '{source.id}' does not verify (body, headers or key"
                " differ from what was signed)",
                "forged",
                401,
            )
        now = self._clock.now()
        if now - timestamp > auth.max_age:
            raise IngestError(
                f"batch of source '{source.id}' was signed {now - timestamp:.1f}s ago;"
                f" the limit is {auth.max_age:g}s",
                "too_old",
                401,
            )
        if timestamp - now > auth.max_skew:
            raise IngestError(
                f"batch of source '{source.id}' is dated {timestamp - now:.1f}s in the future;"
                f" the allowed clock skew is {auth.max_skew:g}s",
                "future",
                401,
            )
        self._check_sequence(source.id, sequence)
        return Verified(source.id, sequence)

    def _check_sequence(self, source: str, sequence: int) -> None:
        """An early refusal of numbers below the last accepted one. The last number itself
        passes: it may be a resend of that very batch, which the runtime answers as a
        duplicate (it compares the bodies' digests and records numbers as it accepts)."""
        last = self._store.last_sequence(source)
        if last is not None and sequence < last:
            raise IngestError(
                f"sequence {sequence} of source '{source}' is not above the last accepted"
                f" ({last}): a replay",
                "replayed",
                409,
            )


def _sequence(raw: str | None) -> int:
    text = (raw or "").strip()
    if not text.isdigit() or not text.isascii() or len(text) > 19:
        raise IngestError(f"{SEQUENCE} must be a non-negative integer", "bad_auth_header", 400)
    return int(text)


def _timestamp(raw: str | None) -> float:
    try:
        value = float((raw or "").strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise IngestError(
            f"{TIMESTAMP} must be unix seconds (a finite number)", "bad_auth_header", 400
        )
    return value
