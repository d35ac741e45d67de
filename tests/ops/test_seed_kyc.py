"""The demo KYC applicants meet the sample lists as the worker's checks will: Maria Elena
Fernandez Ruiz is a PEP potential match (an alert, so a HIGH-risk case with an open hit), Lena
Vogel matches nothing (her case just waits for an officer). And the generated documents pass
the upload inspection. Cheap: the sample files parsed in-process, no stack."""

from __future__ import annotations

from domain.appropriateness import Appropriateness, QuestionnaireAnswers, assess
from domain.documents import DocumentKind
from domain.screening import ScreeningSubject
from ops.seed import DEMO_CLIENTS, SAMPLE_LIST_FILES, SAMPLE_LISTS
from ops.seed_kyc import DEMO_KYC_APPLICANTS, demo_answers, demo_pdf
from screening.formats import load_list
from screening.matcher import Screener
from storage.inspection import inspect_upload


def test_the_pep_applicant_is_an_alert_and_the_other_is_clear() -> None:
    screener = Screener(
        load_list(source, (SAMPLE_LISTS / name).read_bytes()) for source, name in SAMPLE_LIST_FILES
    )
    people = {email: (name, country, birth) for email, name, country, birth, _ in DEMO_CLIENTS}
    alerts = {}
    for applicant in DEMO_KYC_APPLICANTS:
        name, country, birth = people[applicant.email]
        subject = ScreeningSubject(
            full_name=name, date_of_birth=birth, nationality=country, country=country
        )
        alerts[applicant.label] = [hit for hit in screener.screen(subject) if hit.is_alert]
    assert alerts["demo-kyc-lena"] == []
    [pep] = alerts["demo-kyc-maria"]
    assert pep.is_pep


def test_the_demo_documents_and_answers_are_accepted() -> None:
    pdf = demo_pdf("PASSPORT (demo)", "LENA VOGEL")
    inspected = inspect_upload(
        pdf,
        filename="passport.pdf",
        declared_content_type="application/pdf",
        kind=DocumentKind.PASSPORT,
    )
    assert inspected.pages == 1
    result = assess(QuestionnaireAnswers(answers=demo_answers()))
    assert result.outcome is Appropriateness.APPROPRIATE
