"""Text fields: the document's limits are the server's, on the text as sent.

Two fuzzing runs (schemathesis) found the two disagreeing: a reason of 1001 characters whose
first was U+2029, a space, which the document's `maxLength` (1000) refused and the server, having
stripped the space, took; and a server name holding U+0085, which is a space to the server's
`\\s` and not to a JSON Schema validator's (ECMA-262). The property below asks the validator
schemathesis uses (jsonschema_rs) and the server about the same texts, on short limits where
every boundary is reached often.
"""

from __future__ import annotations

from typing import Annotated, Any

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from api.reconciliation.schemas import LedgerAccountCode, ServerName
from api.schemas import Note, Reason, Stripped

# Spaces pydantic strips (ASCII, a line break, U+0085, U+2029 among them), characters the two
# regex dialects class differently (U+0085, U+FEFF), one pydantic does not strip (U+001F),
# characters a `refused` class names, letters, an astral character, a ledger code's parts.
SPACES = [" ", "\t", "\n", "\x0b", "\x85", "\ufeff", "\u2029", "\u3000", "\x1f", "\x00"]
ALPHABET = st.sampled_from([*SPACES, "a", "Z", "\U0001442b", ":", "USD"])
TYPES: dict[str, Any] = {
    "Stripped(0, 6)": Annotated[str, Stripped(0, 6)],
    "Stripped(1, 5, control)": Annotated[str, Stripped(1, 5, refused=r"\x00-\x1f")],
    "Stripped(3, 7)": Annotated[str, Stripped(3, 7)],
    "Stripped(5, 6)": Annotated[str, Stripped(5, 6)],
    "ServerName": ServerName,
    "LedgerAccountCode": LedgerAccountCode,
}


def document_admits(schema: dict[str, Any], text: str) -> bool:
    return bool(jsonschema_rs.validator_for(schema).is_valid(text))


def server_admits(adapter: TypeAdapter[str], text: str) -> bool:
    try:
        adapter.validate_python(text)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("name", TYPES)
@given(text=st.lists(ALPHABET, max_size=10).map("".join))
def test_the_document_and_the_server_admit_the_same_texts(name: str, text: str) -> None:
    adapter: TypeAdapter[str] = TypeAdapter(TYPES[name])
    assert document_admits(adapter.json_schema(), text) == server_admits(adapter, text)


def test_a_space_around_does_not_stretch_the_limit() -> None:
    reason: TypeAdapter[str] = TypeAdapter(Reason)
    assert reason.validate_python("\u2029" + "a" * 999) == "a" * 999
    with pytest.raises(ValidationError, match="at most 1000 characters"):
        reason.validate_python("\u2029" + "a" * 1000)


def test_what_is_kept_is_the_stripped_text() -> None:
    assert TypeAdapter(Note).validate_python("  checked with the desk \n") == (
        "checked with the desk"
    )
    with pytest.raises(ValidationError, match="at least 1 character"):
        TypeAdapter(Note).validate_python(" \u3000 ")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Reason", "checked\x00 with the desk"),
        ("Note", "a\x00b"),
        ("ServerName", "mt5\x00live"),
        ("LedgerAccountCode", "wallet:a\x00b:USD"),
    ],
)
def test_a_nul_is_refused_by_the_document_and_the_server(name: str, text: str) -> None:
    """PostgreSQL stores no NUL: a text that would reach a column with one is refused up front,
    as the document says, not by the database (a fuzzing run's reason held two)."""
    adapter: TypeAdapter[str] = TypeAdapter({**TYPES, "Reason": Reason, "Note": Note}[name])
    assert not document_admits(adapter.json_schema(), text)
    assert not server_admits(adapter, text)
    assert server_admits(adapter, text.replace("\x00", ""))
