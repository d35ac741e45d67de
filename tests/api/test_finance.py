"""Finance and compliance through HTTP: payment views, approvals, decisions (handed to the
payment's workflow), the ledger, FX rates, KYC and webhook events."""

from __future__ import annotations

import httpx

from contracts.funds import DECIDE, StaffDecision
from db.models import AuditEntry, Client, FxRateRow
from domain.payments import PaymentStatus
from domain.roles import StaffRole
from tests.api.conftest import Books, FakeTemporal
from tests.support.people import People


class TestPaymentViews:
    async def test_finance_lists_and_filters_payments_with_references_and_flags(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        auditor = await people.staff(StaffRole.AUDITOR)
        alice, bob = await people.client(), await people.client()
        held = await books.payment(
            alice, direction="deposit", status="held", provider="cardco", provider_ref="pi_9",
            risk_flags=("payer_name_mismatch", "velocity"),
        )  # fmt: skip
        payout = await books.payment(
            bob, status="payout_sent", provider_ref="po_1", mt5_login=5_200_777
        )
        listed = await api.get("/v1/finance/payments", headers=auditor.headers)
        assert listed.status_code == 200
        by_id = {p["id"]: p for p in listed.json()["items"]}
        assert set(by_id) == {str(held.id), str(payout.id)}
        view = by_id[str(held.id)]
        assert view["gateway_reference"] == "pi_9"
        assert view["risk_flags"] == ["payer_name_mismatch", "velocity"]
        assert (view["compliance_status"], view["amount"], view["currency"]) == (
            "pending",
            "2500.00",
            "USD",
        )
        assert by_id[str(payout.id)]["mt5_login"] == 5_200_777

        for params, expected in (
            ({"direction": "deposit"}, [held.id]),
            ({"status": "payout_sent"}, [payout.id]),
            ({"provider": "cardco"}, [held.id]),
            ({"client_id": str(bob.id)}, [payout.id]),
        ):
            page = await api.get("/v1/finance/payments", params=params, headers=auditor.headers)
            assert [p["id"] for p in page.json()["items"]] == [str(i) for i in expected], params
        bad = await api.get(
            "/v1/finance/payments", params={"status": "lost"}, headers=auditor.headers
        )
        assert bad.status_code == 422

    async def test_one_payment_with_its_decisions_and_webhooks(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        finance = await people.staff(StaffRole.FINANCE)
        client = await people.client()
        payment = await books.payment(client)
        await books.decision(payment, finance, "finance", True)
        detail = await api.get(f"/v1/finance/payments/{payment.id}", headers=finance.headers)
        assert detail.status_code == 200
        [decision] = detail.json()["decisions"]
        assert (decision["staff_id"], decision["approve"]) == (str(finance.id), True)
        assert detail.json()["webhook_events"] == []
        missing = await api.get(f"/v1/finance/payments/{client.id}", headers=finance.headers)
        assert missing.status_code == 404

    async def test_approvals_hold_pending_withdrawals_and_held_deposits(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        compliance = await people.staff(StaffRole.COMPLIANCE)
        officer = await people.staff(StaffRole.FINANCE)
        client = await people.client()
        withdrawal = await books.payment(client)
        deposit = await books.payment(client, direction="deposit", status="held")
        await books.payment(client, direction="deposit", status="completed", risk_flags=())
        await books.decision(withdrawal, officer, "finance", True)
        approvals = (await api.get("/v1/finance/approvals", headers=compliance.headers)).json()
        assert [(a["id"], a["waiting_for"], a["approvals"]) for a in approvals] == [
            (str(withdrawal.id), "finance (two different officers)", 1),
            (str(deposit.id), "compliance", 0),
        ]


class TestDecisions:
    async def test_a_finance_officer_decides_through_the_workflow(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        officer = await people.staff(StaffRole.FINANCE)
        client = await people.client()
        payment = await books.payment(client)
        response = await api.post(
            f"/v1/finance/withdrawals/{payment.id}/decision",
            json={"approve": True, "reason": "documents checked"},
            headers={**officer.headers, "X-Request-ID": "req-decide-1"},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "payment_id": str(payment.id),
            "status": "pending_approval",
            "approvals": 1,
        }
        [(workflow_id, update, decision)] = temporal.updates
        assert (workflow_id, update) == (payment.workflow_id, DECIDE.name)
        assert isinstance(decision, StaffDecision)
        assert (decision.staff_id, decision.roles, decision.approve) == (
            officer.id,
            ("finance",),
            True,
        )
        assert (decision.reason, decision.ip, decision.request_id) == (
            "documents checked",
            "127.0.0.1",
            "req-decide-1",
        )
        # The workflow records the decision with its audit row; the API writes none itself.
        assert await books.count(AuditEntry, AuditEntry.entity_id == str(payment.id)) == 0

    async def test_refusals_by_the_workflow_and_finished_workflows_are_conflicts(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        officer = await people.staff(StaffRole.FINANCE)
        client = await people.client()
        payment = await books.payment(client)
        path = f"/v1/finance/withdrawals/{payment.id}/decision"
        body = {"approve": True, "reason": "second look"}

        temporal.refusal = "you have approved this withdrawal already: a second officer must"
        twice = await api.post(path, json=body, headers=officer.headers)
        assert twice.status_code == 409
        assert twice.json()["detail"] == temporal.refusal

        temporal.refusal = None
        temporal.closed.add(payment.workflow_id)
        closed = await api.post(path, json=body, headers=officer.headers)
        assert closed.status_code == 409 and "nothing to decide" in closed.json()["detail"]

        temporal.down = True
        assert (await api.post(path, json=body, headers=officer.headers)).status_code == 503

        finished = await books.payment(client, status=PaymentStatus.COMPLETED)
        done = await api.post(
            f"/v1/finance/withdrawals/{finished.id}/decision", json=body, headers=officer.headers
        )
        assert done.status_code == 409 and "nothing to decide" in done.json()["detail"]
        assert temporal.updates == []

    async def test_each_desk_decides_only_its_own_direction(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        finance = await people.staff(StaffRole.FINANCE)
        compliance = await people.staff(StaffRole.COMPLIANCE)
        client = await people.client()
        withdrawal = await books.payment(client)
        deposit = await books.payment(client, direction="deposit", status="held")
        body = {"approve": False, "reason": "payer is not the client"}
        wrong = await api.post(
            f"/v1/compliance/deposits/{withdrawal.id}/decision",
            json=body,
            headers=compliance.headers,
        )
        assert wrong.status_code == 404
        right = await api.post(
            f"/v1/compliance/deposits/{deposit.id}/decision", json=body, headers=compliance.headers
        )
        assert right.status_code == 200, right.text
        assert temporal.updates[0][0] == deposit.workflow_id
        assert temporal.updates[0][2].roles == ("compliance",)
        refused = await api.post(
            f"/v1/compliance/deposits/{deposit.id}/decision", json=body, headers=finance.headers
        )
        assert refused.status_code == 403
        empty = await api.post(
            f"/v1/finance/withdrawals/{withdrawal.id}/decision",
            json={"approve": True, "reason": "  "},
            headers=finance.headers,
        )
        assert empty.status_code == 422


class TestLedgerViews:
    async def test_accounts_with_balances_and_the_entries_of_one(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        finance = await people.staff(StaffRole.FINANCE)
        client = await people.client()
        await books.fund_wallet(client, "10.00")
        await books.fund_wallet(client, "5.50")
        page = await api.get("/v1/finance/ledger/accounts", headers=finance.headers)
        balances = {a["code"]: a["balance"] for a in page.json()["items"]}
        wallet = f"wallet:{client.id}:USD"
        assert balances == {"psp:bankco:USD": "15.50", wallet: "-15.50"}
        only = await api.get(
            "/v1/finance/ledger/accounts", params={"kind": "psp"}, headers=finance.headers
        )
        assert [a["code"] for a in only.json()["items"]] == ["psp:bankco:USD"]

        entries = await api.get(
            f"/v1/finance/ledger/accounts/{wallet}/entries", headers=finance.headers
        )
        assert entries.status_code == 200
        body = entries.json()
        assert body["account"]["balance"] == "-15.50"
        assert [e["amount_on_account"] for e in body["items"]] == ["-5.50", "-10.00"]
        assert sorted(p["account"] for p in body["items"][0]["postings"]) == [
            "psp:bankco:USD",
            wallet,
        ]
        missing = await api.get(
            "/v1/finance/ledger/accounts/wallet:nobody:USD/entries", headers=finance.headers
        )
        assert missing.status_code == 404


class TestFxRatesAndKyc:
    async def test_rates_are_checked_audited_and_the_newest_one_shown(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        finance = await people.staff(StaffRole.FINANCE)
        for bad in (
            {"base": "EUR", "quote": "EUR", "bid": "1", "ask": "1"},
            {"base": "EUR", "quote": "XYZ", "bid": "1", "ask": "1"},
            {"base": "EUR", "quote": "USD", "bid": "1.09", "ask": "1.08"},
            {"base": "EUR", "quote": "USD", "bid": "0", "ask": "1.08"},
            {"base": "EUR", "quote": "USD", "bid": "-1", "ask": "1.08"},
            {"base": "EUR", "quote": "USD", "bid": 1.08, "ask": "1.09"},
        ):
            response = await api.post("/v1/finance/fx-rates", json=bad, headers=finance.headers)
            assert response.status_code == 422, bad
        assert await books.count(FxRateRow) == 0
        for ask in ("1.0844", "1.0850"):
            created = await api.post(
                "/v1/finance/fx-rates",
                json={"base": "EUR", "quote": "USD", "bid": "1.0840", "ask": ask},
                headers=finance.headers,
            )
            assert created.status_code == 201, created.text
        await api.post(
            "/v1/finance/fx-rates",
            json={"base": "GBP", "quote": "USD", "bid": "1.25", "ask": "1.26"},
            headers=finance.headers,
        )
        latest = (await api.get("/v1/finance/fx-rates", headers=finance.headers)).json()
        assert [(r["base"], r["quote"], r["ask"]) for r in latest] == [
            ("EUR", "USD", "1.085"),
            ("GBP", "USD", "1.26"),
        ]
        rows = await books.rows(AuditEntry, AuditEntry.action == "fx_rate.set")
        assert len(rows) == 3
        second = next(r for r in rows if r.after and r.after["ask"].startswith("1.085"))
        assert second.before is not None and second.before["ask"].startswith("1.0844")

    async def test_compliance_sets_kyc_with_before_and_after(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        compliance = await people.staff(StaffRole.COMPLIANCE)
        client = await people.client()
        body = {"kyc_status": "approved", "screening_status": "clear", "reason": "passport checked"}
        response = await api.put(
            f"/v1/compliance/clients/{client.id}/kyc", json=body, headers=compliance.headers
        )
        assert response.status_code == 200
        assert response.json() == {
            "client_id": str(client.id),
            "kyc_status": "approved",
            "screening_status": "clear",
        }
        [row] = await books.rows(AuditEntry, AuditEntry.action == "client.kyc_updated")
        assert row.before == {"kyc_status": "pending", "screening_status": "unscreened"}
        assert row.after == {"kyc_status": "approved", "screening_status": "clear"}
        assert row.reason == "passport checked"
        [stored] = await books.rows(Client, Client.id == client.id)
        assert stored.kyc_status == "approved"
        bad = await api.put(
            f"/v1/compliance/clients/{client.id}/kyc",
            json={**body, "kyc_status": "maybe"},
            headers=compliance.headers,
        )
        assert bad.status_code == 422
        nobody = await api.put(
            f"/v1/compliance/clients/{compliance.id}/kyc", json=body, headers=compliance.headers
        )
        assert nobody.status_code == 404


async def test_webhook_events_by_outcome(
    api: httpx.AsyncClient, people: People, books: Books
) -> None:
    finance = await people.staff(StaffRole.FINANCE)
    await api.post("/v1/webhooks/cardco", content=b"{}", headers={"CardCo-Signature": "t=1,v1=00"})
    rejected = await api.get(
        "/v1/finance/webhook-events", params={"outcome": "rejected"}, headers=finance.headers
    )
    [event] = rejected.json()
    assert (event["provider"], event["outcome"]) == ("cardco", "rejected")
    accepted = await api.get(
        "/v1/finance/webhook-events", params={"outcome": "accepted"}, headers=finance.headers
    )
    assert accepted.json() == []
