"""Ed25519 keys: read from settings (PEM text or a file), written as JWKs, named by their
RFC 7638 thumbprint.

Two kinds of keys use them. The auth service's user-token key (`JWT_PRIVATE_KEY`): only
the auth service holds it, everyone else verifies with its public half from the JWKS.
Each service's internal identity (`INTERNAL_PRIVATE_KEY`): only that service holds it,
its callees verify with its public half (`INTERNAL_PUBLIC_KEYS`).
"""

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

_PUBLIC_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.DOTALL)


class InvalidKey(ValueError):
    """A key that cannot be read (not PEM, not Ed25519)."""


def _pem_text(value: str) -> bytes:
    # An environment variable or a .env line holds one line: `\n` stands for a newline.
    return value.strip().replace("\\n", "\n").encode()


def load_private_key(pem: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_pem_text(pem), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidKey("not a PEM private key (PKCS#8, unencrypted)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidKey("not an Ed25519 key (make one with `openssl genpkey -algorithm ed25519`)")
    return key


def load_public_key(pem: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(_pem_text(pem))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidKey("not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidKey("not an Ed25519 public key")
    return key


def load_public_keys(text: str) -> list[Ed25519PublicKey]:
    """Every `PUBLIC KEY` PEM block of a text (one after the other, in any order)."""
    blocks = _PUBLIC_PEM_BLOCK.findall(text.replace("\\n", "\n"))
    if text.strip() and not blocks:
        raise InvalidKey("no PEM public key (-----BEGIN PUBLIC KEY-----) in it")
    return [load_public_key(block) for block in blocks]


def load_public_key_map(text: str) -> dict[str, Ed25519PublicKey]:
    """`INTERNAL_PUBLIC_KEYS`: name -> public key, as a JSON object of PEMs
    (`{"order": "-----BEGIN PUBLIC KEY-----..."}`) or, where braces and newlines are
    awkward (compose, a shell), as `name:x` pairs separated by commas, `x` being the raw
    key in base64url (a JWK's `x`)."""
    text = text.strip()
    if not text.startswith("{"):
        return dict(_compact_public_key(pair) for pair in text.split(",") if pair.strip())
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidKey('not JSON: expected {"name": "-----BEGIN PUBLIC KEY-----..."}') from exc
    if not isinstance(value, dict) or not all(isinstance(pem, str) for pem in value.values()):
        raise InvalidKey('expected a JSON object {"name": "-----BEGIN PUBLIC KEY-----..."}')
    return {str(name): load_public_key(pem) for name, pem in value.items()}


def _compact_public_key(pair: str) -> tuple[str, Ed25519PublicKey]:
    name, _, x = pair.strip().partition(":")
    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
        return name, Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise InvalidKey(f"{pair.strip()!r} is not name:<base64url Ed25519 key>") from None


def compact_public_key(key: Ed25519PublicKey) -> str:
    """The raw key in base64url, as in `INTERNAL_PUBLIC_KEYS=order:<this>,...`."""
    return _b64url(_raw(key))


# The development keys written into docker-compose.yml and the Kubernetes dev overlay (so
# that those start with nothing configured), by thumbprint: production refuses them, as it
# refuses the placeholders of secrets.
DEVELOPMENT_KEY_THUMBPRINTS = frozenset(
    {
        "zm83A4XcP34z8ELTdC4KP-uzdJzoTDfDdqn18sEo4kY",  # jwt
        "C4WDmQQ7Gccm9beP5spA0vrDlUgnHNV821bL3jHzfAM",  # auth
        "l3ZXagX1VWWWe-KSueuhyzpBLUjieHPx7USeFPns_TI",  # product
        "MjQMvPLzTI9X0WwjzRuJBCkGqCNL7wBxsTmUcFhzzjM",  # cart
        "1uUKYIaltKNBgsdK0sUchgSvBtctqIl-Mo8DRUy-q9g",  # order
        "VVg9jyDWlP85XSP8cbgJVF2EEC1rvjRNWDekhdebKWQ",  # payment
        "DrxjsNybsc7eTSnJQ4XaJBM7Ldo4dvZvGcfU2162k2E",  # gateway
        "xZpDPMWJzdY0umjVfKMA64yDL9UB7OPo7LtINhOkGf8",  # admin-console
    }
)


def is_development_key(key: Ed25519PrivateKey) -> bool:
    return thumbprint(key.public_key()) in DEVELOPMENT_KEY_THUMBPRINTS


def read_setting(value: str | None, file: Path | None, name: str) -> str | None:
    """A key's text from `NAME` or from the file `NAME_FILE` names (not both)."""
    if value and file:
        raise ValueError(f"set {name} or {name}_FILE, not both")
    if file:
        try:
            return file.read_text()
        except OSError as exc:
            raise ValueError(f"{name}_FILE: cannot read {file}: {exc.strerror}") from None
    return value or None


def private_key_setting(
    value: str | None, file: Path | None, name: str, *, what: str
) -> Ed25519PrivateKey:
    """The Ed25519 private key a setting holds (`NAME`, or the file `NAME_FILE` names);
    `ValueError` naming the setting when it is missing (`what` says what the key is for)
    or not such a key."""
    pem = read_setting(value, file, name)
    if pem is None:
        raise ValueError(f"{name} (or {name}_FILE) must be set: {what}")
    try:
        return load_private_key(pem)
    except InvalidKey as exc:
        raise ValueError(f"{name}: {exc}") from None


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638: SHA-256 of the required members in lexical order, no whitespace."""
    members = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw(key))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(members.encode()).digest())


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(_raw(key)),
        "kid": thumbprint(key),
        "use": "sig",
        "alg": "EdDSA",
    }


def jwks(keys: list[Ed25519PublicKey]) -> dict[str, list[dict[str, str]]]:
    return {"keys": [public_jwk(key) for key in keys]}


def keys_of_jwks(document: Any) -> dict[str, Ed25519PublicKey]:
    """kid -> key of a JWKS document; keys of other kinds are passed over, a document that
    is no JWKS is a ValueError."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    found: dict[str, Ed25519PublicKey] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        try:
            x = str(jwk["x"])
            key = Ed25519PublicKey.from_public_bytes(
                base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            )
        except (KeyError, ValueError):
            continue
        # Named by what it is: a kid that is not the key's own thumbprint is not believed.
        found[thumbprint(key)] = key
    return found
