"""What the console's lists read, as people read them: names and emails for the ids the
services answer with, live and demo accounts told apart, ledger balances on their debit or
credit side, and every list a page at a time with its search and filters.

Read-only: no audit rows, no commits. The API's own answers are not changed (ids there are
for programs); this is the console's reading of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import ColumnElement, String, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.console.list_pages import paged
from api.console.schemas import (
    AccountLabel,
    LedgerEntryLine,
    LedgerLine,
    LedgerPosting,
    Paging,
    Person,
)
from api.finance import service as finance_service
from api.finance.schemas import DecisionResult, PendingApproval
from api.kyc import service as kyc_service
from api.kyc.schemas import QueueItem
from api.ledger import service as ledger_service
from api.schemas import decimal_text
from db.models import (
    Client,
    FinanceCase,
    LedgerAccount,
    Mt5Account,
    Payment,
    PostingRow,
    QuestionnaireResponse,
    StaffUser,
)
from domain.account_terms import (
    HIGH_RISK_LEVERAGE_CAP,
    account_leverage_cap,
    regulatory_leverage_cap,
    terms_category,
)
from domain.appropriateness import Appropriateness, AppropriatenessResult, ClientCategory
from domain.countries import region_of
from domain.errors import BackOfficeError
from domain.kyc import CaseStatus
from domain.ledger import AccountKind
from domain.onboarding import AccountType
from domain.payment_checks import APPROVALS_NEEDED
from domain.payments import FinanceCaseStatus, PaymentDirection, PaymentStatus
from domain.risk import RiskLevel

if TYPE_CHECKING:
    from settings import Settings

T = TypeVar("T")
# A search over the KYC queue reads at most this many cases of the filter (the queue's
# service has no text search of its own); the page says when it stopped short.
QUEUE_SEARCH_WINDOW = 500

PURPOSE = {
    AccountKind.CLIENT_WALLET.value: "client wallet: what we owe the client",
    AccountKind.HOLD.value: "held for the client's pending withdrawal",
    AccountKind.MT5_MIRROR.value: "money on the client's MT5 account",
    AccountKind.PSP_CLEARING.value: "clearing: what the processor holds for us",
    AccountKind.BANK.value: "our bank account",
    AccountKind.FEES.value: "fees paid to processors",
    AccountKind.FX_RESULT.value: "FX position and results",
    AccountKind.REVENUE.value: "revenue",
    AccountKind.SUSPENSE.value: "suspense: money whose owner is not known yet",
}
CLIENT_OWNED = (AccountKind.CLIENT_WALLET.value, AccountKind.HOLD.value)


def page_of(items: Sequence[T], offset: int, limit: int) -> tuple[list[T], Paging]:
    """A page of a list already in memory (small lists: pending approvals, an audit trail)."""
    shown = list(items[offset : offset + limit])
    return shown, Paging(offset=offset, limit=limit, shown=len(shown), total=len(items))


def like(text: str) -> str:
    """`text` as a case-insensitive substring pattern, its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- who an id is --------------------------------------------------------------------------------


async def people(session: AsyncSession, ids: Iterable[object]) -> dict[str, Person]:
    """Clients and staff by id (as text); an id that is neither is left out."""
    wanted: set[uuid.UUID] = set()
    for value in ids:
        if value is None:
            continue
        try:
            wanted.add(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except ValueError:
            continue
    if not wanted:
        return {}
    found: dict[str, Person] = {}
    clients = await session.execute(
        select(Client.id, Client.full_name, Client.email).where(Client.id.in_(wanted))
    )
    for client_id, name, email in clients.tuples():
        found[str(client_id)] = Person(id=str(client_id), name=name, email=email, kind="client")
    staff = await session.execute(
        select(StaffUser.id, StaffUser.full_name, StaffUser.email).where(StaffUser.id.in_(wanted))
    )
    for staff_id, name, email in staff.tuples():
        found[str(staff_id)] = Person(id=str(staff_id), name=name, email=email, kind="staff")
    return found


def server_kinds(settings: Settings) -> dict[str, str]:
    return {server.name: server.kind for server in settings.mt5_fleet()}


async def account_labels(
    session: AsyncSession, settings: Settings, accounts: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], AccountLabel]:
    """MT5 accounts by (server, login), labelled by the account's own kind."""
    wanted = {(server, int(login)) for server, login in accounts}
    if not wanted:
        return {}
    kinds = server_kinds(settings)
    rows = await session.execute(
        select(Mt5Account.server, Mt5Account.login, Mt5Account.kind).where(
            or_(*(and_(Mt5Account.server == s, Mt5Account.login == n) for s, n in wanted))
        )
    )
    known = {(server, int(login)): kind for server, login, kind in rows.tuples()}
    return {
        (server, login): AccountLabel(
            kind=known.get((server, login), "unknown"),
            login=login,
            server=server,
            server_kind=kinds.get(server),
        )
        for server, login in wanted
    }


# -- finance: approvals, payments, cases ---------------------------------------------------------


def _client_matches(search: str) -> ColumnElement[bool]:
    pattern = like(search)
    return or_(Client.full_name.ilike(pattern), Client.email.ilike(pattern))


async def approvals_page(
    session: AsyncSession,
    *,
    direction: PaymentDirection | None,
    search: str,
    limit: int,
    offset: int,
) -> tuple[list[PendingApproval], Paging, dict[str, Person]]:
    """Payments waiting for a decision (at most 500, oldest first), filtered and paged; with
    the people they name (clients, officers who decided)."""
    waiting = await finance_service.pending_approvals(session)
    names = await people(
        session,
        [p.client_id for p in waiting] + [d.staff_id for p in waiting for d in p.decisions],
    )
    if direction is not None:
        waiting = [p for p in waiting if p.direction == direction.value]
    if search:
        needle = search.casefold()

        def hit(p: PendingApproval) -> bool:
            who = names.get(str(p.client_id))
            texts = [p.reference, str(p.id), p.gateway_reference or ""]
            if who is not None:
                texts += [who.name, who.email]
            return any(needle in t.casefold() for t in texts)

        waiting = [p for p in waiting if hit(p)]
    shown, paging = page_of(waiting, offset, limit)
    return shown, paging, names


async def payments_page(
    session: AsyncSession,
    *,
    status: PaymentStatus | None,
    direction: PaymentDirection | None,
    search: str,
    limit: int,
    offset: int,
) -> tuple[list[Payment], Paging, dict[str, Person]]:
    """Payments newest first; `search` finds a client's name or email, a reference or the
    processor's reference."""
    conditions: list[ColumnElement[bool]] = []
    if status is not None:
        conditions.append(Payment.status == status.value)
    if direction is not None:
        conditions.append(Payment.direction == direction.value)
    if search:
        pattern = like(search)
        conditions.append(
            or_(
                _client_matches(search),
                Payment.reference.ilike(pattern),
                Payment.provider_ref.ilike(pattern),
                Payment.transfer_reference.ilike(pattern),
                cast(Payment.id, String).ilike(pattern),
            )
        )
    base = select(Payment).join(Client, Client.id == Payment.client_id).where(*conditions)
    order = (Payment.created_at.desc(), Payment.id)
    rows, paging = await paged(session, base, order, limit=limit, offset=offset)
    return rows, paging, await people(session, [p.client_id for p in rows])


async def open_finance_cases(session: AsyncSession) -> int:
    """How many finance cases are open (the payments page links to their own page)."""
    count = select(func.count()).where(FinanceCase.status == FinanceCaseStatus.OPEN.value)
    return int(await session.scalar(count) or 0)


def decision_notice(direction: PaymentDirection, approve: bool, result: DecisionResult) -> str:
    """What the decision did: the state the payment's workflow reached with it, as its update
    answered (rejected, still waiting for a second officer, released for payout, crediting)."""
    status = result.status
    if not approve:
        return f"rejected: the {direction.value} is {status}" + (
            ", its funds go back to the client" if direction is PaymentDirection.WITHDRAWAL else ""
        )
    if direction is PaymentDirection.DEPOSIT:
        return f"approved: the deposit is {status}"
    counted = f"approved ({result.approvals} of {APPROVALS_NEEDED}): the withdrawal is {status}"
    if status == PaymentStatus.PENDING_APPROVAL.value:
        return f"{counted}, a second, different finance officer must approve"
    if status == PaymentStatus.PAYOUT_SENT.value:
        return f"{counted}, released for payout"
    return counted


# -- compliance: the queue, a case's leverage ----------------------------------------------------


async def queue_page(
    session: AsyncSession,
    *,
    status: CaseStatus | None,
    escalated: bool | None,
    search: str,
    limit: int,
    offset: int,
) -> tuple[list[QueueItem], Paging]:
    """The review queue in its order (`api.kyc.service.queue`); `search` finds a client's
    name, email or country among the first QUEUE_SEARCH_WINDOW cases of the filter."""
    if not search:
        page = await kyc_service.queue(
            session, status=status, escalated=escalated, limit=limit, offset=offset
        )
        return page.items, Paging(
            offset=offset, limit=limit, shown=len(page.items), total=page.total
        )
    window = await kyc_service.queue(
        session, status=status, escalated=escalated, limit=QUEUE_SEARCH_WINDOW, offset=0
    )
    needle = search.casefold()
    found = [
        item
        for item in window.items
        if any(
            needle in text.casefold()
            for text in (item.client_name, item.client_email, item.client_country)
        )
    ]
    return page_of(found, offset, limit)


async def leverage_of_case(
    session: AsyncSession, client_id: uuid.UUID, account_type: str, risk_level: str | None
) -> dict[str, object]:
    """The leverage the case's live account gets, computed by the same rule that opens it
    (`domain.account_terms.account_leverage_cap`, as `activities.kyc_records` calls it): the
    lowest of the regulatory cap, the appropriateness test's own cap and the high-risk cap.
    `why` names each part, so the page shows one number and where it comes from."""
    client = await session.get(Client, client_id)
    row = await session.scalar(
        select(QuestionnaireResponse)
        .where(QuestionnaireResponse.client_id == client_id)
        .order_by(QuestionnaireResponse.created_at.desc(), QuestionnaireResponse.id)
        .limit(1)
    )
    if client is None or row is None:
        return {"cap": None, "why": ["no questionnaire answered: no live account yet"]}
    # The cap depends on the outcome and the test's own cap only, both stored with the answers.
    result = AppropriatenessResult(
        version=row.version,
        score=row.score,
        max_score=row.max_score,
        knowledge_score=0,
        knowledge_max=0,
        outcome=Appropriateness(row.outcome),
        leverage_cap=row.leverage_cap,
        refused_products=(),
        warnings=(),
    )
    risk = RiskLevel(risk_level or client.risk_level or RiskLevel.HIGH.value)
    try:
        region = region_of(client.country)
        run_as = terms_category(region, ClientCategory(client.category), AccountType(account_type))
        regulatory = regulatory_leverage_cap(region, run_as)
        cap = account_leverage_cap(region, run_as, result, risk)
    except BackOfficeError as refused:
        return {"cap": None, "why": [f"refused: {refused.detail}"]}
    why = [f"regulatory 1:{regulatory} ({run_as.value} terms, {region.value} region)"]
    why.append(
        f"questionnaire 1:{row.leverage_cap}"
        if row.leverage_cap
        else "questionnaire: no cap of its own"
    )
    if risk is RiskLevel.HIGH:
        why.append(f"HIGH risk 1:{HIGH_RISK_LEVERAGE_CAP}")
    return {"cap": cap, "why": why}


# -- the ledger ----------------------------------------------------------------------------------


def sides(amount: Decimal | str) -> tuple[str | None, str | None]:
    """A debit-positive amount on its side: (debit, credit), the other one None."""
    value = Decimal(amount)
    if value > 0:
        return format(value, "f"), None
    if value < 0:
        return None, format(-value, "f")
    return None, None


def _owner_part(code: str) -> tuple[str, str]:
    """`wallet:<client>:EUR` -> ("wallet", "<client>"); `mt5:demo:5000001:USD` -> ("mt5",
    "demo:5000001")."""
    kind, _, rest = code.partition(":")
    owner, _, _ = rest.rpartition(":")
    return kind, owner


async def ledger_lines(
    session: AsyncSession,
    settings: Settings,
    accounts: Sequence[tuple[str, str, str, Decimal | str | None]],
) -> dict[str, LedgerLine]:
    """Ledger accounts (code, kind, currency, debit-positive balance or None) with their
    owner and purpose."""
    client_ids: list[str] = []
    mt5: list[tuple[str, int]] = []
    for code, kind, _, _ in accounts:
        _, owner = _owner_part(code)
        if kind in CLIENT_OWNED:
            client_ids.append(owner)
        elif kind == AccountKind.MT5_MIRROR.value:
            server, _, login = owner.rpartition(":")
            if login.isdigit():
                mt5.append((server, int(login)))
    labels = await account_labels(session, settings, mt5)
    mt5_owners: dict[tuple[str, int], str] = {}
    if labels:
        rows = await session.execute(
            select(Mt5Account.server, Mt5Account.login, Mt5Account.client_id).where(
                or_(*(and_(Mt5Account.server == s, Mt5Account.login == n) for s, n in labels))
            )
        )
        mt5_owners = {(s, int(n)): str(c) for s, n, c in rows.tuples()}
    names = await people(session, [*client_ids, *mt5_owners.values()])
    lines: dict[str, LedgerLine] = {}
    for code, kind, currency, balance in accounts:
        _, owner = _owner_part(code)
        line = LedgerLine(code=code, kind=kind, currency=currency, purpose=PURPOSE.get(kind, kind))
        if kind in CLIENT_OWNED:
            line.owner = names.get(owner)
        elif kind == AccountKind.MT5_MIRROR.value:
            server, _, login = owner.rpartition(":")
            if login.isdigit():
                key = (server, int(login))
                line.account = labels.get(key)
                line.owner = names.get(mt5_owners.get(key, ""))
        elif kind == AccountKind.PSP_CLEARING.value:
            line.purpose = f"clearing at {owner}: what the processor holds for us"
        if balance is not None:
            line.debit, line.credit = sides(balance)
        lines[code] = line
    return lines


async def ledger_page(
    session: AsyncSession,
    settings: Settings,
    *,
    kind: AccountKind | None,
    currency: str | None,
    search: str,
    limit: int,
    offset: int,
) -> tuple[list[LedgerLine], Paging]:
    """Ledger accounts by code with their balances; `search` finds an account code, or a
    client's name or email (their wallets, holds and MT5 mirrors)."""
    conditions: list[ColumnElement[bool]] = []
    if kind is not None:
        conditions.append(LedgerAccount.kind == kind.value)
    if currency:
        conditions.append(LedgerAccount.currency == currency)
    if search:
        matched: list[ColumnElement[bool]] = [LedgerAccount.code.ilike(like(search))]
        clients = list(
            await session.scalars(select(Client.id).where(_client_matches(search)).limit(200))
        )
        for client_id in clients:
            for owned in CLIENT_OWNED:
                matched.append(LedgerAccount.code.startswith(f"{owned}:{client_id}:"))
        if clients:
            logins = await session.execute(
                select(Mt5Account.server, Mt5Account.login).where(Mt5Account.client_id.in_(clients))
            )
            for server, login in logins.tuples():
                prefix = f"{AccountKind.MT5_MIRROR.value}:{server}:{login}:"
                matched.append(LedgerAccount.code.startswith(prefix, autoescape=True))
        conditions.append(or_(*matched))
    total = await session.scalar(select(func.count(LedgerAccount.id)).where(*conditions))
    rows = await session.execute(
        select(
            LedgerAccount.code,
            LedgerAccount.kind,
            LedgerAccount.currency,
            func.coalesce(func.sum(PostingRow.amount_minor), 0),
        )
        .outerjoin(PostingRow, PostingRow.account_id == LedgerAccount.id)
        .where(*conditions)
        .group_by(LedgerAccount.id)
        .order_by(LedgerAccount.code)
        .limit(limit)
        .offset(offset)
    )
    accounts = [
        (code, kind_, ccy, decimal_text(int(total_minor), ccy))
        for code, kind_, ccy, total_minor in rows.tuples()
    ]
    lines = await ledger_lines(session, settings, accounts)
    shown = [lines[code] for code, _, _, _ in accounts]
    return shown, Paging(offset=offset, limit=limit, shown=len(shown), total=int(total or 0))


async def ledger_entries(
    session: AsyncSession, settings: Settings, code: str, *, limit: int, offset: int
) -> tuple[LedgerLine, list[LedgerEntryLine], Paging]:
    """One account's entries, newest first, each posting on its debit or credit side with the
    account's owner and purpose."""
    page = await ledger_service.entries(session, code, limit + 1, offset)
    more = len(page.items) > limit
    items = page.items[:limit]
    accounts = {(page.account.code, page.account.kind, page.account.currency, page.account.balance)}
    posted = {
        (p.account, p.account.partition(":")[0], p.currency, None)
        for e in items
        for p in e.postings
        if p.account != page.account.code
    }
    lines = await ledger_lines(session, settings, sorted(accounts | posted, key=lambda a: a[0]))
    entries = []
    for entry in items:
        debit, credit = sides(entry.amount_on_account)
        postings = []
        for posting in entry.postings:
            p_debit, p_credit = sides(posting.amount)
            postings.append(
                LedgerPosting(line=lines[posting.account], debit=p_debit, credit=p_credit)
            )
        entries.append(
            LedgerEntryLine(
                id=str(entry.id),
                booked_at=entry.booked_at,
                description=entry.description,
                idempotency_key=entry.idempotency_key,
                reverses_id=str(entry.reverses_id) if entry.reverses_id else None,
                debit=debit,
                credit=credit,
                postings=postings,
            )
        )
    paging = Paging(offset=offset, limit=limit, shown=len(entries), more=more)
    return lines[page.account.code], entries, paging
