"""Where uploaded KYC documents live: a key → bytes store, encrypted at rest, and the inspection
every upload passes before it is stored."""

from storage.documents import (
    DocumentConflict,
    DocumentCorrupt,
    DocumentMissing,
    DocumentStore,
    EncryptedDocumentStore,
    InvalidKey,
    LocalFileStore,
    StorageError,
    check_key,
)

__all__ = [
    "DocumentConflict",
    "DocumentCorrupt",
    "DocumentMissing",
    "DocumentStore",
    "EncryptedDocumentStore",
    "InvalidKey",
    "LocalFileStore",
    "StorageError",
    "check_key",
]
