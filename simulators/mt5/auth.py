"""The manager handshake, from the protocol reference (MD5 of the UTF-16LE password + "WebAPI")."""

from __future__ import annotations

import hashlib
import hmac


def _password_hash(password: str) -> bytes:
    inner = hashlib.md5(password.encode("utf-16-le")).digest()
    return hashlib.md5(inner + b"WebAPI").digest()


def proof(password: str, random_hex: str) -> str:
    return hashlib.md5(_password_hash(password) + bytes.fromhex(random_hex)).hexdigest()


def matches(password: str, random_hex: str, answer: str) -> bool:
    return hmac.compare_digest(proof(password, random_hex), answer.lower())
