"""Stripped text: the document's limits are the server's, on the text as sent.

A fuzzing run (schemathesis) once sent a reason of 1001 characters whose first was U+2029, a
space: the document's `maxLength` (1000) refused it, the server stripped the space and took it.
The property below compares the two on short limits, where every boundary is reached often.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from api.schemas import Note, Reason, Stripped

# Spaces pydantic strips (ASCII, a line break, U+2029 among them), one it does not (U+001F),
# characters a `refused` class names, letters, an astral character.
ALPHABET = st.sampled_from(
    [" ", "\t", "\n", "\x0b", "\u2029", "\u3000", "\x1f", "\x00", "a", "Z", "\U0001442b"]
)
SHAPES = [Stripped(0, 6), Stripped(1, 5, refused=r"\x00-\x1f"), Stripped(3, 7), Stripped(5, 6)]


def document_admits(schema: dict[str, Any], text: str) -> bool:
    """What a JSON Schema validator says: lengths count characters, the pattern searches."""
    return (
        schema["minLength"] <= len(text) <= schema["maxLength"]
        and re.search(schema["pattern"], text) is not None
    )


def server_admits(adapter: TypeAdapter[str], text: str) -> bool:
    try:
        adapter.validate_python(text)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("shape", SHAPES, ids=repr)
@given(text=st.lists(ALPHABET, max_size=10).map("".join))
def test_the_document_and_the_server_admit_the_same_texts(shape: Stripped, text: str) -> None:
    adapter: TypeAdapter[str] = TypeAdapter(Annotated[str, shape])
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
