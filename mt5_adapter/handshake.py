"""The Web API's challenge-response (MD5 over the UTF-16LE password, salted with "WebAPI")."""

from __future__ import annotations

import hashlib
import hmac
import os


def password_hash(password: str) -> bytes:
    return hashlib.md5(hashlib.md5(password.encode("utf-16-le")).digest() + b"WebAPI").digest()


def answer_to(password: str, challenge_hex: str) -> str:
    """The proof of knowing `password` for a 16-byte challenge given in hex."""
    return hashlib.md5(password_hash(password) + bytes.fromhex(challenge_hex)).hexdigest()


def new_challenge() -> str:
    return os.urandom(16).hex()


def proves(password: str, challenge_hex: str, answer_hex: str) -> bool:
    return hmac.compare_digest(answer_to(password, challenge_hex), answer_hex.lower())
