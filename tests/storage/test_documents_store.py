"""Document stores: a local directory (atomic, write-once, no traversal), encryption at rest."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from storage.documents import (
    DocumentConflict,
    DocumentCorrupt,
    DocumentMissing,
    EncryptedDocumentStore,
    InvalidKey,
    LocalFileStore,
    check_key,
    generate_key,
)

KEY = SecretStr(generate_key())
OTHER_KEY = SecretStr(generate_key())
PLAINTEXT = b"%PDF-1.7 passport of Ann Example, No. P1234567 " + os.urandom(4096)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def local(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "documents")


@pytest.fixture
def encrypted(local: LocalFileStore) -> EncryptedDocumentStore:
    return EncryptedDocumentStore(local, KEY)


# -- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "",
        "..",
        ".",
        "../secret",
        "a/../../etc/passwd",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "a/",
        ".hidden",
        "a/.tmp-x",
        "a\\..\\b",
        "a b",
        "a\x00b",
        "clé",
        "x" * 513,
    ],
)
async def test_unsafe_keys_refused(
    key: str, local: LocalFileStore, encrypted: EncryptedDocumentStore
) -> None:
    with pytest.raises(InvalidKey):
        check_key(key)
    for store in (local, encrypted):
        with pytest.raises(InvalidKey):
            await store.put(key, PLAINTEXT)
        with pytest.raises(InvalidKey):
            await store.get(key)
        with pytest.raises(InvalidKey):
            await store.exists(key)
        with pytest.raises(InvalidKey):
            await store.delete(key)


def test_ordinary_keys_accepted() -> None:
    for key in ["a", "clients/42/documents/7f3c9a.bin", "x-y_z.1/2"]:
        assert check_key(key) == key


# -- the local store -----------------------------------------------------------------------------


async def test_local_round_trip(local: LocalFileStore) -> None:
    key = "clients/1/documents/a"
    assert not await local.exists(key)
    await local.put(key, PLAINTEXT)
    assert await local.exists(key)
    assert await local.get(key) == PLAINTEXT
    path = local.root / key
    assert files_under(local.root) == [path]  # no temporary file left behind
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    await local.delete(key)
    assert not await local.exists(key)
    await local.delete(key)  # deleting twice is fine
    with pytest.raises(DocumentMissing):
        await local.get(key)


async def test_local_put_is_write_once(local: LocalFileStore) -> None:
    await local.put("k", PLAINTEXT)
    await local.put("k", PLAINTEXT)  # same bytes: a no-op
    with pytest.raises(DocumentConflict):
        await local.put("k", PLAINTEXT + b"!")
    assert await local.get("k") == PLAINTEXT
    assert files_under(local.root) == [local.root / "k"]


async def test_local_concurrent_puts_of_one_key(local: LocalFileStore) -> None:
    await asyncio.gather(*(local.put("same", PLAINTEXT) for _ in range(8)))
    assert await local.get("same") == PLAINTEXT
    outcomes = await asyncio.gather(
        local.put("raced", b"a" * 2048), local.put("raced", b"b" * 2048), return_exceptions=True
    )
    assert sum(isinstance(o, DocumentConflict) for o in outcomes) == 1
    assert await local.get("raced") in (b"a" * 2048, b"b" * 2048)
    assert {p.name for p in files_under(local.root)} == {"same", "raced"}


async def test_a_prefix_of_a_key_is_not_a_document(local: LocalFileStore) -> None:
    await local.put("clients/1/doc", PLAINTEXT)
    assert not await local.exists("clients/1")
    with pytest.raises(DocumentMissing):
        await local.get("clients/1")
    with pytest.raises(DocumentMissing):
        await local.get("clients/1/doc/more")


# -- encryption at rest --------------------------------------------------------------------------


async def test_encrypted_round_trip_and_nothing_readable_at_rest(
    encrypted: EncryptedDocumentStore, local: LocalFileStore
) -> None:
    key = "clients/1/documents/passport"
    await encrypted.put(key, PLAINTEXT)
    assert await encrypted.exists(key)
    assert await encrypted.get(key) == PLAINTEXT

    [path] = files_under(local.root)
    raw = path.read_bytes()
    digest = hashlib.sha256(PLAINTEXT)
    assert PLAINTEXT not in raw
    assert b"passport of Ann" not in raw
    assert b"%PDF" not in raw
    assert PLAINTEXT[-64:] not in raw
    assert digest.digest() not in raw
    assert digest.hexdigest().encode() not in raw
    assert raw.startswith(b"BFD\x01\x01")  # magic, format version, key id
    assert len(raw) == len(PLAINTEXT) + 5 + 12 + 16

    await encrypted.delete(key)
    assert not await encrypted.exists(key)
    assert files_under(local.root) == []


async def test_each_put_uses_a_fresh_nonce(tmp_path: Path) -> None:
    one = LocalFileStore(tmp_path / "one")
    two = LocalFileStore(tmp_path / "two")
    await EncryptedDocumentStore(one, KEY).put("k", PLAINTEXT)
    await EncryptedDocumentStore(two, KEY).put("k", PLAINTEXT)
    assert (one.root / "k").read_bytes() != (two.root / "k").read_bytes()


async def test_encrypted_put_is_idempotent_and_write_once(
    encrypted: EncryptedDocumentStore, local: LocalFileStore
) -> None:
    await encrypted.put("k", PLAINTEXT)
    stored = (local.root / "k").read_bytes()
    await encrypted.put("k", PLAINTEXT)  # same plaintext: no-op, ciphertext untouched
    assert (local.root / "k").read_bytes() == stored
    with pytest.raises(DocumentConflict):
        await encrypted.put("k", PLAINTEXT[:-1])
    await asyncio.gather(*(encrypted.put("c", PLAINTEXT) for _ in range(8)))
    assert await encrypted.get("c") == PLAINTEXT


@pytest.mark.parametrize("position", [0, 3, 4, 5, 10, 17, 100, -1])
async def test_tampered_object_refused(
    position: int, encrypted: EncryptedDocumentStore, local: LocalFileStore
) -> None:
    await encrypted.put("k", PLAINTEXT)
    path = local.root / "k"
    raw = bytearray(path.read_bytes())
    raw[position] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(DocumentCorrupt):
        await encrypted.get("k")


async def test_truncated_or_foreign_object_refused(
    encrypted: EncryptedDocumentStore, local: LocalFileStore
) -> None:
    await local.put("short", b"BFD\x01\x01")
    await local.put("plain", PLAINTEXT)
    for key in ("short", "plain"):
        with pytest.raises(DocumentCorrupt):
            await encrypted.get(key)


async def test_swapped_files_refused(
    encrypted: EncryptedDocumentStore, local: LocalFileStore
) -> None:
    """Each object is bound to its key: Ann's file copied over Bob's does not open as Bob's."""
    await encrypted.put("clients/ann/passport", b"ann " + PLAINTEXT)
    await encrypted.put("clients/bob/passport", b"bob " + PLAINTEXT)
    ann = local.root / "clients/ann/passport"
    bob = local.root / "clients/bob/passport"
    bob.write_bytes(ann.read_bytes())
    with pytest.raises(DocumentCorrupt):
        await encrypted.get("clients/bob/passport")
    assert await encrypted.get("clients/ann/passport") == b"ann " + PLAINTEXT


async def test_wrong_key_refused(local: LocalFileStore) -> None:
    await EncryptedDocumentStore(local, KEY).put("k", PLAINTEXT)
    with pytest.raises(DocumentCorrupt):
        await EncryptedDocumentStore(local, OTHER_KEY).get("k")
    # The same key under another id is not configured for id 1 either.
    with pytest.raises(DocumentCorrupt, match="key id 1"):
        await EncryptedDocumentStore(local, KEY, key_id=2).get("k")


async def test_rotation_opens_objects_of_a_previous_key(local: LocalFileStore) -> None:
    await EncryptedDocumentStore(local, KEY, key_id=1).put("old", PLAINTEXT)
    rotated = EncryptedDocumentStore(local, OTHER_KEY, key_id=2, previous_keys={1: KEY})
    await rotated.put("new", PLAINTEXT)
    assert await rotated.get("old") == PLAINTEXT
    assert await rotated.get("new") == PLAINTEXT
    assert await rotated.key_id_of("old") == 1
    assert await rotated.key_id_of("new") == 2
    await rotated.put("old", PLAINTEXT)  # idempotent across keys too
    # An edited header naming the other key does not open (the header is authenticated).
    path = local.root / "old"
    raw = bytearray(path.read_bytes())
    raw[4] = 2
    path.write_bytes(bytes(raw))
    with pytest.raises(DocumentCorrupt):
        await rotated.get("old")


@pytest.mark.parametrize("bad", ["", "short", "not base64 at all!", generate_key()[:-4], "A" * 64])
def test_bad_keys_refused_without_echoing_them(bad: str, local: LocalFileStore) -> None:
    with pytest.raises(ValueError) as caught:
        EncryptedDocumentStore(local, SecretStr(bad))
    if bad:
        assert bad not in str(caught.value)


def test_key_ids_checked(local: LocalFileStore) -> None:
    with pytest.raises(ValueError):
        EncryptedDocumentStore(local, KEY, key_id=0)
    with pytest.raises(ValueError):
        EncryptedDocumentStore(local, KEY, key_id=256)
    with pytest.raises(ValueError):
        EncryptedDocumentStore(local, KEY, key_id=1, previous_keys={1: OTHER_KEY})


def test_repr_holds_no_key(local: LocalFileStore) -> None:
    store = EncryptedDocumentStore(local, KEY)
    assert KEY.get_secret_value() not in repr(store)
    assert "key_id=1" in repr(store)
