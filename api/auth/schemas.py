from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Email, NewPassword, Password, TotpCode


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


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class PasswordResetRequested(BaseModel):
    """The same answer whether or not the address has an account."""

    detail: str = (
        "if an account has this address, a mail with a link to choose a new password is on "
        "its way; the link works once"
    )


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # `<reset id>.<secret>` from the mailed link (its `#token=` part).
    token: str = Field(min_length=34, max_length=200)
    # The server's rules, documented as checked: 12-128 characters, three of lower, upper,
    # digit, other.
    new_password: NewPassword


class PasswordResetDone(BaseModel):
    # Every session of the account was ended: log in again with the new password.
    sessions_ended: int


class StaffPasswordResetConfirm(PasswordResetConfirm):
    """A staff user's confirmation: the mailed token alone does not take over a staff account."""

    # The current code of the staff user's authenticator app (as at log-in; one not used before).
    totp_code: TotpCode


class ConsoleResetRequest(BaseModel):
    """The console's "forgot password" form (staff or IB). Unconstrained here on purpose: the
    route checks it as the API's body (`PasswordResetRequest`) and answers a refusal on the page
    (422, text/html), so no refusal of the form leaves as a problem the page cannot show."""

    email: str = ""


class ConsoleResetConfirm(BaseModel):
    """The console's "set new password" form: the token the page's script copied from the
    link's fragment, the new password, and (staff) the current one-time code. Checked by the
    route as the API's body, refusals on the page (as above)."""

    token: str = ""
    new_password: str = ""
    totp_code: str = ""
