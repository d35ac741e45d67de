from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from api.schemas import Email, Password, TotpCode


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password


class StaffLoginRequest(LoginRequest):
    totp_code: TotpCode


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
