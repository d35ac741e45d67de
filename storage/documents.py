"""Document bytes by key: a local directory, and an encrypting wrapper around any store.

Keys are chosen by BrokerFlow (e.g. `clients/42/documents/7f3c…`), never by the uploader: a
client's file name is metadata, not a path. Keys are write-once — storing other bytes under a key
that exists is refused, storing the same bytes again is a no-op — so a retried upload or activity
is harmless and nothing is ever silently overwritten.

Prefer random identifiers over content hashes in keys: a file name holding a document's SHA-256
tells whoever can list the directory which document it is, if they already have a copy.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

MAX_KEY_LENGTH: Final = 512
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
# Segments start with a letter or digit: no `..`, no `.`, no hidden files (temporary files of
# LocalFileStore start with a dot, so they can never collide with a key), no absolute paths.
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*", re.ASCII)


class StorageError(Exception):
    """Base of the document store's errors."""


class InvalidKey(StorageError, ValueError):
    """A key that could escape the store or is not in the allowed alphabet."""


class DocumentMissing(StorageError, LookupError):
    """Nothing is stored under the key."""


class DocumentConflict(StorageError):
    """The key already holds other bytes; keys are write-once."""


class DocumentCorrupt(StorageError):
    """Stored bytes that do not open: tampered with, moved from another key, or another key."""


def check_key(key: str) -> str:
    """The key itself if it is safe to use as a relative path, else InvalidKey."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise InvalidKey(
            f"invalid document key {key!r}: '/'-separated segments of letters, digits, '.', '_'"
            " and '-', each starting with a letter or digit"
        )
    return key


class DocumentStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...


class LocalFileStore:
    """One file per key under `root` (directories 0700, files 0600), written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalFileStore({str(self.root)!r})"

    def path_of(self, key: str) -> Path:
        path = self.root / check_key(key)
        # The pattern already rules traversal out; this keeps it true if the pattern changes.
        if self.root not in path.parents:
            raise InvalidKey(f"document key {key!r} leaves the store")
        return path

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self.path_of(key), key, bytes(data))

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, self.path_of(key), key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, self.path_of(key))

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_of(key).is_file)

    # -- blocking parts, run in a worker thread ---------------------------------------------------

    def _put(self, path: Path, key: str, data: bytes) -> None:
        if path.exists():
            self._same_or_conflict(path, key, data)
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600 with O_EXCL, in the target directory (same file system).
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            try:
                # A hard link never replaces an existing file: two writers of one key cannot
                # overwrite each other, unlike rename.
                os.link(tmp, path)
            except FileExistsError:
                self._same_or_conflict(path, key, data)
                return
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
                # A file system without hard links: check, then rename (a narrow race remains).
                if path.exists():
                    self._same_or_conflict(path, key, data)
                    return
                os.replace(tmp, path)
            _fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _same_or_conflict(path: Path, key: str, data: bytes) -> None:
        if not hmac.compare_digest(path.read_bytes(), data):
            raise DocumentConflict(f"document key {key!r} already holds other content")

    @staticmethod
    def _get(path: Path, key: str) -> bytes:
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise DocumentMissing(f"no document under key {key!r}") from exc

    @staticmethod
    def _delete(path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except (IsADirectoryError, NotADirectoryError):
            return
        if path.parent.is_dir():
            _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a created or removed directory entry durable (not every platform allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- encryption at rest ---------------------------------------------------------------------------

MAGIC: Final = b"BFD"  # BrokerFlow document
FORMAT_VERSION: Final = 1
NONCE_BYTES: Final = 12
KEY_BYTES: Final = 32
_HEADER_BYTES: Final = len(MAGIC) + 2  # magic, format version, key id
_TAG_BYTES: Final = 16


def generate_key() -> str:
    """A new document key: 32 random bytes, urlsafe base64 (the same form as a Fernet key)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def _decode_key(key: SecretStr) -> bytes:
    try:
        raw = base64.b64decode(key.get_secret_value().strip(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        # Never echo the key, not even a part of it.
        raise ValueError(
            "a document encryption key must be 32 random bytes in urlsafe base64 "
            "(python -c 'from storage.documents import generate_key; print(generate_key())')"
        )
    return raw


class EncryptedDocumentStore:
    """Encrypts every object with AES-256-GCM before it reaches `inner`; plaintext stays in memory.

    Layout of a stored object: `BFD` | format version (1 byte) | key id (1 byte) | 96-bit random
    nonce | ciphertext + 128-bit tag. The header and the document key are the associated data: a
    file copied under another key, or a header edited to name another key id, does not decrypt.

    `key_id` names the key new objects are sealed with; `previous_keys` (id → key) still open
    objects sealed before a rotation.
    """

    def __init__(
        self,
        inner: DocumentStore,
        key: SecretStr,
        *,
        key_id: int = 1,
        previous_keys: Mapping[int, SecretStr] | None = None,
    ) -> None:
        if not 1 <= key_id <= 255:
            raise ValueError("key_id must be within 1..255")
        previous = dict(previous_keys or {})
        if key_id in previous:
            raise ValueError(f"key id {key_id} is both the current and a previous key")
        if not all(1 <= old_id <= 255 for old_id in previous):
            raise ValueError("key ids must be within 1..255")
        self._inner = inner
        self._key_id = key_id
        self._keys: dict[int, AESGCM] = {
            old_id: AESGCM(_decode_key(old_key)) for old_id, old_key in previous.items()
        }
        self._keys[key_id] = AESGCM(_decode_key(key))

    def __repr__(self) -> str:
        return f"EncryptedDocumentStore({self._inner!r}, key_id={self._key_id})"

    @property
    def key_id(self) -> int:
        return self._key_id

    async def put(self, key: str, data: bytes) -> None:
        check_key(key)
        data = bytes(data)
        if await self._inner.exists(key):
            await self._same_or_conflict(key, data)
            return
        sealed = await asyncio.to_thread(self._seal, key, data)
        try:
            await self._inner.put(key, sealed)
        except DocumentConflict:
            # Another writer stored the key meanwhile (with its own nonce): same plaintext is fine.
            await self._same_or_conflict(key, data)

    async def get(self, key: str) -> bytes:
        check_key(key)
        blob = await self._inner.get(key)
        return await asyncio.to_thread(self._open, key, blob)

    async def delete(self, key: str) -> None:
        await self._inner.delete(check_key(key))

    async def exists(self, key: str) -> bool:
        return await self._inner.exists(check_key(key))

    async def key_id_of(self, key: str) -> int:
        """Which key sealed the object (for a re-encryption job after a rotation)."""
        blob = await self._inner.get(check_key(key))
        return self._parse_header(key, blob)

    async def _same_or_conflict(self, key: str, data: bytes) -> None:
        if not hmac.compare_digest(await self.get(key), data):
            raise DocumentConflict(f"document key {key!r} already holds other content")

    def _header(self, key_id: int) -> bytes:
        return MAGIC + bytes((FORMAT_VERSION, key_id))

    @staticmethod
    def _associated_data(header: bytes, key: str) -> bytes:
        return header + b"\x00" + key.encode()

    def _seal(self, key: str, data: bytes) -> bytes:
        header = self._header(self._key_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        aead = self._keys[self._key_id]
        return header + nonce + aead.encrypt(nonce, data, self._associated_data(header, key))

    def _parse_header(self, key: str, blob: bytes) -> int:
        if len(blob) < _HEADER_BYTES + NONCE_BYTES + _TAG_BYTES or not blob.startswith(MAGIC):
            raise DocumentCorrupt(f"document {key!r} is not an encrypted BrokerFlow document")
        version, key_id = blob[len(MAGIC)], blob[len(MAGIC) + 1]
        if version != FORMAT_VERSION:
            raise DocumentCorrupt(f"document {key!r} has unknown format version {version}")
        return key_id

    def _open(self, key: str, blob: bytes) -> bytes:
        key_id = self._parse_header(key, blob)
        aead = self._keys.get(key_id)
        if aead is None:
            raise DocumentCorrupt(
                f"document {key!r} is sealed with key id {key_id}, which is not configured"
            )
        header = blob[:_HEADER_BYTES]
        nonce = blob[_HEADER_BYTES : _HEADER_BYTES + NONCE_BYTES]
        try:
            return aead.decrypt(
                nonce, blob[_HEADER_BYTES + NONCE_BYTES :], self._associated_data(header, key)
            )
        except InvalidTag as exc:
            raise DocumentCorrupt(
                f"document {key!r} does not decrypt: altered, moved from another key, "
                "or sealed with another key"
            ) from exc
