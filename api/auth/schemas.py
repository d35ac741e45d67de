from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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
    # Exchanged at POST /v1/auth/refresh for a new pair; each one works once.
    refresh_token: str
    refresh_expires_in: int


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=34, max_length=200)


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # false: this session only; true: every session of yours, on every device.
    everywhere: bool


class LoggedOut(BaseModel):
    sessions_ended: int
