"""Demo KYC cases for `make run`: clients who applied for a live account, so the compliance
console's first look shows work (`python -m ops.seed` runs this after the demo clients).

Each applicant goes the way a client does, through the API's own services: the address verified
(the seed stands in for the click on the mailed link), the appropriateness questionnaire, a
passport and a proof of address (small generated PDFs, inspected and stored as uploads are), then
the application (`submit_kyc`, with an Idempotency-Key), which starts the case's workflow; the
worker's checks screen the applicant and score the risk. With the seed's settings:

* Lena Vogel: nothing found, the case waits in the queue for an officer (`in_review`);
* Maria Elena Fernandez Ruiz: a potential match on the sample PEP list (a fictional entry,
  `fixture-pep-005`), so HIGH risk, four-eyes, and an open screening hit that blocks approval
  until an officer reviews it. Her application waits until the sample lists are active (they
  load through their own workflow), else there would be nothing to match; if they are not
  active within the seed's time, she applies anyway and says so.

Idempotent: an applicant with a case already (any status) is left alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.context import RequestContext
from api.onboarding.documents import Upload, upload_document
from api.onboarding.schemas import DocumentForm, QuestionnaireSubmission
from api.onboarding.service import answer_questionnaire, latest_questionnaire, submit_kyc
from api.policy import Principal
from api.temporal import TemporalConnector
from db import audit
from db.models import Client, ClientDocument, KycCase, ScreeningList
from domain.appropriateness import QUESTIONS
from domain.documents import DocumentKind
from domain.roles import PrincipalKind
from domain.screening import ListSource
from settings import Settings
from storage.documents import DocumentStore

SEEDER = audit.Actor(kind="system", id="ops.seed")
CONTEXT = RequestContext(ip="127.0.0.1", request_id="ops.seed", trace_id=None)
# The same application every run: a re-run finds it by this key.
IDEMPOTENCY_KEY = "demo-kyc-application"


@dataclass(frozen=True)
class DemoApplicant:
    email: str
    label: str  # in the seed's output (which names no email: it lands in a log)
    what_it_shows: str
    needs_lists: bool = False  # screened against the sample lists: wait until they are active


DEMO_KYC_APPLICANTS = (
    DemoApplicant("lena@brokerflow.example", "demo-kyc-lena", "a case awaiting review"),
    DemoApplicant(
        "maria@brokerflow.example",
        "demo-kyc-maria",
        "a high-risk case with an open PEP screening hit",
        needs_lists=True,
    ),
)


def demo_answers() -> dict[str, str]:
    """A questionnaire that finds leveraged CFDs appropriate: every knowledge question right,
    the most experience, a retail client's profile."""
    chosen = {
        q.id: max(q.options, key=lambda o: o.points).id
        for q in QUESTIONS
        if q.kind.value in ("knowledge", "experience")
    }
    chosen.update(
        p_trade_frequency="no",
        p_portfolio="no",
        p_financial_sector="no",
        f_source_of_funds="salary",
        f_expected_deposits="up_to_10k",
    )
    return chosen


def demo_pdf(*lines: str) -> bytes:
    """A one-page PDF with `lines` of text (a stand-in for a scan), written by hand: plain
    content, no active parts, at least the inspection's minimum size."""
    text = " ".join(f"({line}) Tj 0 -18 Td" for line in lines)
    stream = f"BT /F1 14 Tf 72 760 Td {text} ET\n".encode() + b"% demo document\n" * 64
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


class DemoKyc:
    """Applies for each demo applicant as the client would; never fails the seed (what could
    not be done is reported)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        temporal: TemporalConnector,
        settings: Settings,
        store: DocumentStore,
        seconds: float,
        report: Callable[[str], None],
    ) -> None:
        self.sessions = sessions
        self.temporal = temporal
        self.settings = settings
        self.store = store
        self.deadline = time.monotonic() + seconds
        self.report = report

    async def run(self, applicants: tuple[DemoApplicant, ...] = DEMO_KYC_APPLICANTS) -> None:
        for applicant in applicants:
            try:
                self.report(f"{applicant.label} {await self._apply(applicant)}")
            except Exception as error:  # a demo case must not stop `make run`
                self.report(f"{applicant.label} not done ({type(error).__name__}: {error})")

    async def _apply(self, applicant: DemoApplicant) -> str:
        async with self.sessions.begin() as session:
            client = await session.scalar(select(Client).where(Client.email == applicant.email))
            if client is None:
                return "not done (no such demo client)"
            if await session.scalar(select(KycCase.id).where(KycCase.client_id == client.id)):
                return "has its case already"
            me = Principal(PrincipalKind.CLIENT, client.id, client.email, frozenset(), CONTEXT)
            self._verify_email(session, client)
            if await latest_questionnaire(session, client.id) is None:
                await answer_questionnaire(
                    session, me, QuestionnaireSubmission(answers=demo_answers())
                )
            await self._documents(session, me, client)
        lists = (
            ""
            if not applicant.needs_lists or await self._lists_active()
            else (" (the sample lists were not active yet: screened without them)")
        )
        async with self.sessions.begin() as session:
            me = Principal(PrincipalKind.CLIENT, client.id, client.email, frozenset(), CONTEXT)
            case, _ = await submit_kyc(session, self.temporal, self.settings, me, IDEMPOTENCY_KEY)
        return f"applied: {applicant.what_it_shows} (case {case.id}){lists}"

    @staticmethod
    def _verify_email(session: AsyncSession, client: Client) -> None:
        """The seed stands in for the click on the verification link (audited as its own)."""
        if client.email_verified_at is not None:
            return
        client.email_verified_at = datetime.now(UTC)
        audit.record(
            session,
            SEEDER,
            audit.Change(
                action="client.email_verified",
                entity_type="client",
                entity_id=str(client.id),
                before={"email_verified_at": None},
                after={"email_verified_at": client.email_verified_at.isoformat()},
                reason="demo data",
            ),
        )

    async def _documents(self, session: AsyncSession, me: Principal, client: Client) -> None:
        if await session.scalar(
            select(func.count())
            .select_from(ClientDocument)
            .where(ClientDocument.client_id == client.id)
        ):
            return
        today = date.today()
        passport = Upload(
            DocumentForm(
                kind=DocumentKind.PASSPORT,
                issued_on=today - timedelta(days=3 * 365),
                expires_on=today + timedelta(days=5 * 365),
            ),
            "passport.pdf",
            "application/pdf",
            demo_pdf("PASSPORT (demo)", client.full_name.upper(), str(client.id)),
        )
        bill = Upload(
            DocumentForm(kind=DocumentKind.PROOF_OF_ADDRESS, issued_on=today - timedelta(days=7)),
            "utility-bill.pdf",
            "application/pdf",
            demo_pdf(
                "UTILITY BILL (demo)", client.full_name, f"issued {today - timedelta(days=7)}"
            ),
        )
        for upload in (passport, bill):
            await upload_document(session, self.store, me, upload)

    async def _lists_active(self) -> bool:
        return await self._until(self._all_sample_lists_active)

    async def _all_sample_lists_active(self) -> bool:
        async with self.sessions() as session:
            sources = set(
                await session.scalars(
                    select(ScreeningList.source).where(ScreeningList.active).distinct()
                )
            )
        return ListSource.PEP.value in sources

    async def _until(self, done: Callable[[], Awaitable[bool]]) -> bool:
        while True:
            if await done():
                return True
            if time.monotonic() >= self.deadline:
                return False
            await asyncio.sleep(0.5)
