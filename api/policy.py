"""Who may call a route. Every route declares exactly one `Policy`; a test walks all of them.

A policy authenticates the bearer token, reloads the principal from the database on every request
(so a disabled user or a removed role takes effect at once) and, for staff, enforces the user's
IP allowlist.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated

from fastapi import Cookie, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import RequestContext
from api.deps import ContextDep, SessionDep, SettingsDep
from api.security import TokenClaims, read_token
from api.sessions import principal_of_open_session
from db.audit import Actor
from db.models import Client, IntroducingBroker, StaffUser
from domain.errors import Forbidden, NotAuthenticated
from domain.roles import PrincipalKind, StaffRole
from settings import Settings

_bearer = HTTPBearer(auto_error=False)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    id: uuid.UUID
    email: str
    roles: frozenset[StaffRole]
    context: RequestContext
    # Set when the console cookie authenticated the request: forms must echo it back (CSRF).
    csrf: str | None = None
    # The server-side session of the access token (api/sessions.py).
    session_id: uuid.UUID | None = None

    def actor(self) -> Actor:
        return Actor(
            kind=self.kind.value,
            id=str(self.id),
            roles=tuple(sorted(self.roles)),
            ip=self.context.ip,
            request_id=self.context.request_id,
            trace_id=self.context.trace_id,
        )

    def has_role(self, *roles: StaffRole) -> bool:
        return bool(self.roles.intersection(roles))


class Policy:
    """A dependency that lets through only the principals it names."""

    def __init__(
        self,
        name: str,
        *,
        staff: frozenset[StaffRole] = frozenset(),
        clients: bool = False,
        ibs: bool = False,
    ) -> None:
        self.name = name
        self.staff_roles = staff
        self.clients = clients
        self.ibs = ibs

    def __repr__(self) -> str:
        return f"Policy({self.name})"

    def admits(self, kind: PrincipalKind, roles: frozenset[StaffRole]) -> bool:
        if kind is PrincipalKind.STAFF:
            return bool(self.staff_roles & roles)
        return self.clients if kind is PrincipalKind.CLIENT else self.ibs

    async def __call__(
        self,
        credentials: BearerDep,
        session: SessionDep,
        settings: SettingsDep,
        context: ContextDep,
    ) -> Principal:
        if credentials is None:
            raise NotAuthenticated("this route needs a bearer access token")
        return await self.authorise(credentials.credentials, session, settings, context)

    async def authorise(
        self, token: str, session: SessionDep, settings: Settings, context: RequestContext
    ) -> Principal:
        claims = read_token(
            token,
            settings.jwt_secret.get_secret_value(),
            max_ttl=timedelta(minutes=settings.access_token_minutes),
        )
        principal = replace(
            await _load_principal(session, claims, context), session_id=claims.session_id
        )
        if not self.admits(principal.kind, principal.roles):
            raise Forbidden(f"{self.name}: your role may not do this")
        return principal


CONSOLE_COOKIE = "bf_console"
ConsoleCookie = Annotated[str | None, Cookie(alias=CONSOLE_COOKIE, include_in_schema=False)]


def console_csrf(token: str, settings: Settings) -> str:
    """The anti-forgery value console forms carry: bound to the session's own token."""
    key = settings.jwt_secret.get_secret_value().encode()
    return hmac.new(key, b"console-csrf:" + token.encode(), hashlib.sha256).hexdigest()


class ConsolePolicy(Policy):
    """For the server-rendered console: the same access token, from the bearer header or from
    the HttpOnly, SameSite=Strict cookie the console's log-in sets (path /console only)."""

    async def __call__(
        self,
        credentials: BearerDep,
        session: SessionDep,
        settings: SettingsDep,
        context: ContextDep,
        console_token: ConsoleCookie = None,
    ) -> Principal:
        if credentials is not None:
            return await self.authorise(credentials.credentials, session, settings, context)
        if not console_token:
            raise NotAuthenticated("log in to the console first")
        principal = await self.authorise(console_token, session, settings, context)
        return replace(principal, csrf=console_csrf(console_token, settings))


class PublicPolicy:
    """Explicitly open to anyone: sign-up, log-in, health, metrics."""

    name = "public"

    def __repr__(self) -> str:
        return "Policy(public)"

    async def __call__(self) -> None:
        return None


async def _load_principal(
    session: SessionDep, claims: TokenClaims, context: RequestContext
) -> Principal:
    """The token's session is open (api/sessions.py) and its principal still allowed in, read
    in one query with the session on every request."""
    kind = claims.kind
    if kind is PrincipalKind.STAFF:
        staff = await principal_of_open_session(session, claims, StaffUser)
        if staff is None or not staff.active:
            raise NotAuthenticated("staff account is disabled or gone")
        if not ip_allowed(context.ip, staff.ip_allowlist):
            raise Forbidden(f"requests from {context.ip} are not allowed for this staff account")
        return Principal(
            kind, staff.id, staff.email, frozenset(StaffRole(r) for r in staff.roles), context
        )
    if kind is PrincipalKind.CLIENT:
        client = await principal_of_open_session(session, claims, Client)
        if client is None or client.status != "active":
            raise NotAuthenticated("client account is disabled or gone")
        return Principal(kind, client.id, client.email, frozenset(), context)
    ib = await principal_of_open_session(session, claims, IntroducingBroker)
    if ib is None:
        raise NotAuthenticated("IB account is gone")
    return Principal(kind, ib.id, ib.email, frozenset(), context)


def ip_allowed(ip: str, allowlist: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(str(cidr), strict=False) for cidr in allowlist)


ALL_STAFF = frozenset(StaffRole)
OPERATIONS_READERS = frozenset(
    {
        StaffRole.ADMIN,
        StaffRole.COMPLIANCE,
        StaffRole.SUPPORT,
        StaffRole.FINANCE,
        StaffRole.RISK,
        StaffRole.DEALER,
        StaffRole.AUDITOR,
    }
)

public = PublicPolicy()
signed_in = Policy("signed in", staff=ALL_STAFF, clients=True, ibs=True)
clients_only = Policy("clients", clients=True)
ibs_only = Policy("introducing brokers", ibs=True)
admins = Policy("administrators", staff=frozenset({StaffRole.ADMIN}))
auditors = Policy("auditors", staff=frozenset({StaffRole.ADMIN, StaffRole.AUDITOR}))
client_reviewers = Policy("client readers", staff=OPERATIONS_READERS)
client_managers = Policy(
    "client managers", staff=frozenset({StaffRole.ADMIN, StaffRole.COMPLIANCE})
)
ib_readers = Policy(
    "IB readers", staff=frozenset({StaffRole.ADMIN, StaffRole.FINANCE, StaffRole.AUDITOR})
)
# Payments, approvals, the ledger, FX rates and webhooks: read by those who answer for money.
FINANCE_READERS = frozenset(
    {StaffRole.ADMIN, StaffRole.FINANCE, StaffRole.COMPLIANCE, StaffRole.AUDITOR}
)
FINANCE_OFFICERS = frozenset({StaffRole.FINANCE})
COMPLIANCE_OFFICERS = frozenset({StaffRole.COMPLIANCE})
finance_readers = Policy("finance readers", staff=FINANCE_READERS)
finance_officers = Policy("finance officers", staff=FINANCE_OFFICERS)
compliance_officers = Policy("compliance officers", staff=COMPLIANCE_OFFICERS)
rate_setters = Policy("FX rate setters", staff=frozenset({StaffRole.ADMIN, StaffRole.FINANCE}))
# KYC: cases and lists are read by compliance, admins and auditors, decided by compliance only;
# the documents themselves (passports, bank statements) only by compliance and auditors.
KYC_READERS = frozenset({StaffRole.ADMIN, StaffRole.COMPLIANCE, StaffRole.AUDITOR})
KYC_DOCUMENT_READERS = frozenset({StaffRole.COMPLIANCE, StaffRole.AUDITOR})
kyc_readers = Policy("KYC readers", staff=KYC_READERS)
kyc_document_readers = Policy("KYC document readers", staff=KYC_DOCUMENT_READERS)
# Live accounts: the dealing desk and risk move accounts between groups; they and compliance
# switch trading off and on; closing an account is compliance's (or an admin's) call.
account_group_managers = Policy(
    "account group managers", staff=frozenset({StaffRole.ADMIN, StaffRole.DEALER, StaffRole.RISK})
)
account_managers = Policy(
    "account managers",
    staff=frozenset({StaffRole.ADMIN, StaffRole.DEALER, StaffRole.RISK, StaffRole.COMPLIANCE}),
)
account_closers = Policy(
    "account closers", staff=frozenset({StaffRole.ADMIN, StaffRole.COMPLIANCE})
)
account_change_readers = Policy(
    "account change readers",
    staff=frozenset(
        {
            StaffRole.ADMIN,
            StaffRole.DEALER,
            StaffRole.RISK,
            StaffRole.COMPLIANCE,
            StaffRole.AUDITOR,
        }
    ),
)
console_finance_readers = ConsolePolicy("console: finance readers", staff=FINANCE_READERS)
console_finance_officers = ConsolePolicy("console: finance officers", staff=FINANCE_OFFICERS)
console_compliance_officers = ConsolePolicy(
    "console: compliance officers", staff=COMPLIANCE_OFFICERS
)
console_kyc_readers = ConsolePolicy("console: KYC readers", staff=KYC_READERS)
console_kyc_document_readers = ConsolePolicy(
    "console: KYC document readers", staff=KYC_DOCUMENT_READERS
)

PublicAccess = Annotated[None, Depends(public)]
SignedIn = Annotated[Principal, Depends(signed_in)]
ClientPrincipal = Annotated[Principal, Depends(clients_only)]
IbPrincipal = Annotated[Principal, Depends(ibs_only)]
AdminPrincipal = Annotated[Principal, Depends(admins)]
AuditorPrincipal = Annotated[Principal, Depends(auditors)]
ClientReviewer = Annotated[Principal, Depends(client_reviewers)]
ClientManager = Annotated[Principal, Depends(client_managers)]
IbReader = Annotated[Principal, Depends(ib_readers)]
FinanceReader = Annotated[Principal, Depends(finance_readers)]
FinanceOfficer = Annotated[Principal, Depends(finance_officers)]
ComplianceOfficer = Annotated[Principal, Depends(compliance_officers)]
RateSetter = Annotated[Principal, Depends(rate_setters)]
ConsoleFinanceReader = Annotated[Principal, Depends(console_finance_readers)]
ConsoleFinanceOfficer = Annotated[Principal, Depends(console_finance_officers)]
ConsoleComplianceOfficer = Annotated[Principal, Depends(console_compliance_officers)]
KycReader = Annotated[Principal, Depends(kyc_readers)]
KycDocumentReader = Annotated[Principal, Depends(kyc_document_readers)]
AccountGroupManager = Annotated[Principal, Depends(account_group_managers)]
AccountManager = Annotated[Principal, Depends(account_managers)]
AccountCloser = Annotated[Principal, Depends(account_closers)]
AccountChangeReader = Annotated[Principal, Depends(account_change_readers)]
ConsoleComplianceReader = Annotated[Principal, Depends(console_kyc_readers)]
ConsoleKycDocumentReader = Annotated[Principal, Depends(console_kyc_document_readers)]
