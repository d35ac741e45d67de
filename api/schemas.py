"""Field types shared by request schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints

Email = Annotated[EmailStr, StringConstraints(max_length=254)]
Password = Annotated[str, Field(min_length=1, max_length=128)]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
TotpCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
Mt5Login = Annotated[int, Field(gt=0, lt=2**63)]
