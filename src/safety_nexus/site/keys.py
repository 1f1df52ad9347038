"""Reading the keys that sources sign their batches with, without ever showing them.

Two kinds of key (see `ingest.auth` for what is signed and how):

* an HMAC-SHA256 secret, shared by the sender and the site. It is never written in the site
  file: the file names an environment variable (`hmac_key_env`) or a file (`hmac_key_file`)
  that holds it. The key is the variable's or the file's text with surrounding whitespace
  stripped, as UTF-8 bytes (so `openssl rand -hex 32 > gateway.key` makes a good one).
* an Ed25519 public key: 32 raw bytes in base64, or a PEM "PUBLIC KEY" block. Public keys are
  not secret, but they are still kept out of `repr` and messages, so that a site file pasted
  into a ticket never leaks which key a gateway holds.

Errors say what is wrong with a key and never quote it.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from safety_nexus.core.errors import ConfigError, ConfigIssue

__all__ = ["ed25519_public_key", "hmac_key_from_env", "hmac_key_from_file"]

_PEM = "-----BEGIN"


def ed25519_public_key(text: str) -> Ed25519PublicKey:
    """Parse a base64 (32 raw bytes) or PEM Ed25519 public key; `ValueError` without the key."""
    text = text.strip()
    if text.startswith(_PEM):
        try:
            key = load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
            raise ValueError("'ed25519_public_key' is not a valid PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("'ed25519_public_key' is a PEM public key but not an ed25519 one")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "'ed25519_public_key' is neither base64 nor a PEM block "
            "(give the 32 raw key bytes in base64, or a PEM PUBLIC KEY)"
        ) from None
    if len(raw) != 32:
        raise ValueError(
            f"'ed25519_public_key' decodes to {len(raw)} bytes; an ed25519 public key has 32"
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def hmac_key_from_env(source: str, name: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The HMAC key held by environment variable `name`; `ConfigError` if unset or empty."""
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(
            [
                ConfigIssue(
                    f"sources.{source}.auth.hmac_key_env",
                    f"source '{source}': environment variable '{name}' is not set or empty",
                )
            ]
        )
    return value.encode("utf-8")


def hmac_key_from_file(source: str, path: Path) -> bytes:
    """The HMAC key held in the file at `path`; `ConfigError` if unreadable or empty."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
        raise ConfigError(
            [
                ConfigIssue(
                    f"sources.{source}.auth.hmac_key_file",
                    f"source '{source}': cannot read key file '{path}': {why.lower()}",
                )
            ]
        ) from None
    if not value:
        raise ConfigError(
            [
                ConfigIssue(
                    f"sources.{source}.auth.hmac_key_file",
                    f"source '{source}': key file '{path}' is empty",
                )
            ]
        )
    return value.encode("utf-8")
