"""The one secret relay keeps in recoverable form: the SDK key, sealed for secure mode.

Secure mode's hash is HMAC-SHA256 keyed with the SDK key itself (the application's server computes
it with any LaunchDarkly server SDK), so a node checking it needs the raw key, which a hash cannot
give back. The CLI seals the key when it creates or rotates it: AES-256-GCM under a key derived
(HKDF-SHA256) from the operator's `secret_key` (`RELAY_SECRET_KEY`), with the environment and the
key's hash as associated data, so a sealed value cannot be moved to another environment or
credential. Redis holds only the ciphertext; the secret key lives in the nodes' and the CLI's
configuration and never in Redis. See docs/security.md.

A sealed value reads `v1.<fingerprint>.<base64url(nonce + ciphertext)>`: the fingerprint names the
secret key it was sealed under, so a node holding another one can say so instead of "corrupt".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from relay.errors import ValidationError

MIN_SECRET_CHARS = 32
_VERSION = "v1"


class SealError(Exception):
    """A sealed value that this node cannot open (another secret key, or tampered with)."""


def check_secret_key(secret: str) -> None:
    if len(secret) < MIN_SECRET_CHARS:
        raise ValidationError(
            "secret_key",
            f"must be at least {MIN_SECRET_CHARS} characters (got {len(secret)}); generate one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`',
        )


def aad(env_key: str, key_hash: str) -> bytes:
    """What a sealed SDK key is bound to: its environment and the hash of the key itself."""
    return f"relay sdk key\n{env_key}\n{key_hash}".encode()


class Sealer:
    def __init__(self, secret: str) -> None:
        check_secret_key(secret)
        material = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"relay sealing v1").derive(
            secret.encode()
        )
        self._aead = AESGCM(material)
        self.fingerprint = hmac.new(material, b"relay fingerprint", hashlib.sha256).hexdigest()[:12]

    def seal(self, plaintext: str, associated: bytes) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), associated)
        return f"{_VERSION}.{self.fingerprint}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def open(self, token: str, associated: bytes) -> str:
        version, _, rest = token.partition(".")
        fingerprint, _, body = rest.partition(".")
        if version != _VERSION or not body:
            raise SealError("not a sealed value relay understands")
        if fingerprint != self.fingerprint:
            raise SealError(
                f"sealed under another secret key (fingerprint {fingerprint}, this one's {self.fingerprint})"
            )
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return self._aead.decrypt(raw[:12], raw[12:], associated).decode()
        except (InvalidTag, ValueError):
            raise SealError("the sealed value does not open: tampered with, or moved from another key") from None


def sealer_for(secret: str | None) -> Sealer | None:
    return Sealer(secret) if secret else None
