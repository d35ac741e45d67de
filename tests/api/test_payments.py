"""Client deposits, withdrawals and transfers through HTTP: everything a client can get wrong is
refused with a reason before anything is written or any workflow started; a repeated
Idempotency-Key gives back what the first request created."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from contracts.deposit import DEPOSIT, DepositInput
from contracts.transfer import TRANSFER, TransferInput
from contracts.withdrawal import WITHDRAWAL, WithdrawalInput
from db.models import AuditEntry, Payment, Transfer
from domain.payments import PaymentSession
from tests.api.conftest import Books, FakeTemporal
from tests.support.people import People, Person

GOOD_IBAN = "DE89 3704 0044 0532 0130 00"


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def deposit(**overrides: Any) -> dict[str, Any]:
    return {"provider": "cardco", "amount": "100.00", "currency": "USD", **overrides}


def withdrawal(**overrides: Any) -> dict[str, Any]:
    body = {
        "provider": "bankco",
        "amount": "50.00",
        "currency": "USD",
        "beneficiary_name": "Test Client",
        "beneficiary_account": GOOD_IBAN,
    }
    return {**body, **overrides}


async def post(
    api: httpx.AsyncClient, path: str, who: Person, body: dict[str, Any], idem: dict[str, str]
) -> httpx.Response:
    return await api.post(path, json=body, headers={**who.headers, **idem})


class TestBadDepositsWriteNothing:
    @pytest.mark.parametrize(
        ("override", "says"),
        [
            ({"amount": "-10.00"}, "not a positive amount"),
            ({"amount": "0"}, "not a positive amount"),
            ({"amount": "0.00"}, "not a positive amount"),
            ({"amount": "10.001"}, "whole minor units"),
            ({"amount": "1000.5", "currency": "JPY"}, "whole minor units"),
            ({"amount": "9.99"}, "between 10 and 50000"),
            ({"amount": "50000.01"}, "between 10 and 50000"),
            ({"amount": 100}, "decimal string"),
            ({"amount": "1e3"}, "decimal string"),
            ({"amount": "NaN"}, "decimal string"),
            ({"currency": "XYZ"}, "currency XYZ is not supported"),
            ({"currency": "usd"}, "currency"),
            ({"provider": "paypal"}, "provider"),
            ({"mt5_login": 2**70}, "mt5_login"),
            ({"mt5_login": 0}, "mt5_login"),
            ({"extra": "field"}, "extra"),
        ],
    )
    async def test_refused_with_a_reason(
        self,
        api: httpx.AsyncClient,
        people: People,
        books: Books,
        temporal: FakeTemporal,
        override: dict[str, Any],
        says: str,
    ) -> None:
        client = await people.client()
        response = await post(api, "/v1/me/deposits", client, deposit(**override), key())
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert says in response.text
        assert temporal.started == []
        await books.nothing_written()

    async def test_without_an_idempotency_key(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        response = await api.post("/v1/me/deposits", json=deposit(), headers=client.headers)
        assert response.status_code == 422
        assert "Idempotency-Key" in response.json()["detail"]
        too_long = await post(
            api, "/v1/me/deposits", client, deposit(), {"Idempotency-Key": "k" * 201}
        )
        assert too_long.status_code == 422
        assert temporal.started == []
        await books.nothing_written()

    async def test_into_an_unknown_or_another_clients_account(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        alice, bob = await people.client(), await people.client()
        bobs = await books.live_account(bob)
        for login in (bobs, 5_999_998):
            response = await post(api, "/v1/me/deposits", alice, deposit(mt5_login=login), key())
            assert response.status_code == 404, response.text
            assert f"you have no MT5 account {login}" in response.json()["detail"]
        assert temporal.started == []
        await books.nothing_written()

    async def test_into_a_demo_account(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        demo = await books.live_account(client, kind="demo")
        response = await post(api, "/v1/me/deposits", client, deposit(mt5_login=demo), key())
        assert response.status_code == 422
        assert "demo accounts take no real money" in response.json()["detail"]
        assert temporal.started == []
        await books.nothing_written()

    async def test_in_another_currency_than_the_account(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        eur = await books.live_account(client, currency="EUR")
        response = await post(api, "/v1/me/deposits", client, deposit(mt5_login=eur), key())
        assert response.status_code == 422
        assert "held in EUR, not USD" in response.json()["detail"]
        assert temporal.started == []
        await books.nothing_written()

    async def test_when_the_workflow_engine_is_down_nothing_stays(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        temporal.down = True
        response = await post(api, "/v1/me/deposits", client, deposit(), key())
        assert response.status_code == 503
        await books.nothing_written()


class TestDeposits:
    async def test_a_deposit_is_recorded_audited_and_handed_to_its_workflow(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        login = await books.live_account(client)
        response = await post(api, "/v1/me/deposits", client, deposit(mt5_login=login), key())
        assert response.status_code == 202, response.text
        view = response.json()
        assert response.headers["location"] == f"/v1/me/payments/{view['id']}"
        assert view["status"] == "initiated"
        assert (view["amount"], view["currency"], view["mt5_login"]) == ("100.00", "USD", login)
        assert view["reference"].startswith("BF") and len(view["reference"]) == 22
        assert "risk_flags" not in view and "compliance_status" not in view

        [(name, request, workflow_id)] = temporal.started
        assert (name, workflow_id) == (DEPOSIT.name, f"deposit-{view['id']}")
        assert isinstance(request, DepositInput)
        assert request.destination.mt5 is not None
        assert (request.destination.mt5.server, request.destination.mt5.login) == ("live-1", login)
        assert request.amount.amount == 100 and request.reference == view["reference"]

        [payment] = await books.rows(Payment)
        assert (payment.amount_minor, payment.requested_minor) == (10_000, 10_000)
        assert (payment.status, payment.compliance_status, payment.risk_flags) == (
            "initiated",
            "not_checked",
            [],
        )
        [row] = await books.rows(AuditEntry, AuditEntry.action == "payment.deposit_requested")
        assert (row.actor_kind, row.actor_id, row.entity_id) == (
            "client",
            str(client.id),
            view["id"],
        )
        polled = await api.get(f"/v1/me/payments/{view['id']}", headers=client.headers)
        assert polled.status_code == 200 and polled.json()["id"] == view["id"]

    async def test_the_same_key_and_body_give_back_the_same_payment(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        idem = key()
        first = await post(api, "/v1/me/deposits", client, deposit(amount="25"), idem)
        again = await post(api, "/v1/me/deposits", client, deposit(amount="25.00"), idem)
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert len(temporal.started) == 1
        assert await books.count(Payment) == 1
        assert await books.count(AuditEntry, AuditEntry.action.like("payment.%")) == 1

    async def test_two_requests_racing_with_one_key_make_one_payment(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        idem = key()
        answers = await asyncio.gather(
            *(post(api, "/v1/me/deposits", client, deposit(), idem) for _ in range(4))
        )
        assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        assert await books.count(Payment) == 1 and len(temporal.started) == 1

    async def test_the_same_key_with_another_body_is_refused(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        idem = key()
        assert (await post(api, "/v1/me/deposits", client, deposit(), idem)).status_code == 202
        for other in (
            deposit(amount="100.01"),
            deposit(provider="bankco"),
            withdrawal(),  # a withdrawal under a deposit's key
        ):
            path = "/v1/me/withdrawals" if "beneficiary_name" in other else "/v1/me/deposits"
            response = await post(api, path, client, other, idem)
            assert response.status_code == 422, response.text
            assert "used for a different request" in response.json()["detail"]
        assert len(temporal.started) == 1
        assert await books.count(Payment) == 1

    async def test_keys_belong_to_their_client(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        alice, bob = await people.client(), await people.client()
        idem = key()
        a = await post(api, "/v1/me/deposits", alice, deposit(), idem)
        b = await post(api, "/v1/me/deposits", bob, deposit(), idem)
        assert (a.status_code, b.status_code) == (202, 202)
        assert a.json()["id"] != b.json()["id"]
        assert [
            p["id"] for p in (await api.get("/v1/me/payments", headers=bob.headers)).json()
        ] == [b.json()["id"]]
        stolen = await api.get(f"/v1/me/payments/{a.json()['id']}", headers=bob.headers)
        assert stolen.status_code == 404


class TestWithdrawals:
    async def test_cardco_pays_out_only_as_refunds(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        await books.fund_wallet(client, "500.00")
        response = await post(
            api, "/v1/me/withdrawals", client, withdrawal(provider="cardco"), key()
        )
        assert response.status_code == 422
        assert "refund" in response.json()["detail"]
        assert temporal.started == [] and await books.count(Payment) == 0

    @pytest.mark.parametrize(
        "iban",
        [
            "DE89 3704 0044 0532 0130 01",
            "DE89 3704 0044 0532 0130",
            "12DE370400440532013000",
            "x" * 70,
        ],
    )
    async def test_a_wrong_iban_is_refused(
        self,
        api: httpx.AsyncClient,
        people: People,
        books: Books,
        temporal: FakeTemporal,
        iban: str,
    ) -> None:
        client = await people.client()
        await books.fund_wallet(client, "500.00")
        body = withdrawal(beneficiary_account=iban)
        response = await post(api, "/v1/me/withdrawals", client, body, key())
        assert response.status_code == 422, response.text
        assert "beneficiary_account" in response.text
        assert temporal.started == [] and await books.count(Payment) == 0

    async def test_more_than_the_wallet_holds_fails_fast(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        await books.fund_wallet(client, "40.00")
        response = await post(api, "/v1/me/withdrawals", client, withdrawal(), key())
        assert response.status_code == 409
        assert response.json()["title"] == "Insufficient funds"
        assert "40.00 USD available" in response.json()["detail"]
        assert temporal.started == [] and await books.count(Payment) == 0

    async def test_from_a_demo_or_foreign_account(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        alice, bob = await people.client(), await people.client()
        demo = await books.live_account(alice, kind="demo")
        bobs = await books.live_account(bob)
        refused = await post(api, "/v1/me/withdrawals", alice, withdrawal(mt5_login=demo), key())
        assert refused.status_code == 422
        hidden = await post(api, "/v1/me/withdrawals", alice, withdrawal(mt5_login=bobs), key())
        assert hidden.status_code == 404
        assert temporal.started == []
        await books.nothing_written()

    async def test_a_withdrawal_from_the_wallet_starts_its_workflow(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        await books.fund_wallet(client, "50.00")
        response = await post(api, "/v1/me/withdrawals", client, withdrawal(), key())
        assert response.status_code == 202, response.text
        view = response.json()
        assert view["direction"] == "withdrawal" and view["amount"] == "50.00"
        [(name, request, workflow_id)] = temporal.started
        assert (name, workflow_id) == (WITHDRAWAL.name, f"withdrawal-{view['id']}")
        assert isinstance(request, WithdrawalInput)
        assert request.source.mt5 is None and request.source.currency == "USD"
        [payment] = await books.rows(Payment)
        assert payment.beneficiary_account == "DE89370400440532013000"
        [row] = await books.rows(AuditEntry, AuditEntry.action == "payment.withdrawal_requested")
        assert row.after is not None and row.after["beneficiary_account"] == "****3000"


class TestTransfers:
    async def test_the_same_pocket_twice(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        login = await books.live_account(client)
        await books.fund_wallet(client, "100.00")
        for source, destination in (
            ({"kind": "wallet"}, {"kind": "wallet", "currency": "USD"}),
            ({"kind": "mt5", "login": login}, {"kind": "mt5", "login": login}),
        ):
            body = {
                "amount": "10.00",
                "currency": "USD",
                "source": source,
                "destination": destination,
            }
            response = await post(api, "/v1/me/transfers", client, body, key())
            assert response.status_code == 422, response.text
            assert "the same" in response.json()["detail"]
        assert temporal.started == [] and await books.count(Transfer) == 0

    async def test_a_conversion_needs_a_stored_rate(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        eur = await books.live_account(client, currency="EUR")
        await books.fund_wallet(client, "100.00")
        body = {
            "amount": "10.00",
            "currency": "USD",
            "source": {"kind": "wallet"},
            "destination": {"kind": "mt5", "login": eur},
        }
        refused = await post(api, "/v1/me/transfers", client, body, key())
        assert refused.status_code == 422
        assert "no FX rate for USD/EUR" in refused.json()["detail"]
        assert temporal.started == [] and await books.count(Transfer) == 0

        await books.fx_rate("EUR", "USD", "1.0840", "1.0844")  # quoted the other way round
        accepted = await post(api, "/v1/me/transfers", client, body, key())
        assert accepted.status_code == 202, accepted.text
        view = accepted.json()
        assert view["reference"].startswith("TR")
        assert view["source"] == {
            "kind": "wallet",
            "currency": "USD",
            "server": None,
            "login": None,
        }
        assert view["destination"]["login"] == eur and view["destination"]["currency"] == "EUR"
        [(name, request, workflow_id)] = temporal.started
        assert (name, workflow_id) == (TRANSFER.name, f"transfer-{view['id']}")
        assert isinstance(request, TransferInput)
        assert request.destination.currency == "EUR" and request.source.mt5 is None
        assert (
            await api.get(f"/v1/me/transfers/{view['id']}", headers=client.headers)
        ).json() == view

    async def test_bad_sides(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        alice, bob = await people.client(), await people.client()
        eur = await books.live_account(alice, currency="EUR")
        bobs = await books.live_account(bob)
        cases = [
            ({"kind": "mt5", "login": eur}, {"kind": "wallet", "currency": "USD"}, 422),
            ({"kind": "wallet"}, {"kind": "mt5", "login": bobs}, 404),
            ({"kind": "wallet"}, {"kind": "wallet", "currency": "XYZ"}, 422),
            ({"kind": "bank"}, {"kind": "wallet", "currency": "EUR"}, 422),
            ({"kind": "wallet"}, {"kind": "wallet", "currency": "EUR"}, 409),  # empty wallet
        ]
        await books.fx_rate("EUR", "USD", "1.08", "1.09")
        for source, destination, status in cases:
            body = {
                "amount": "10.00",
                "currency": "USD",
                "source": source,
                "destination": destination,
            }
            response = await post(api, "/v1/me/transfers", alice, body, key())
            assert response.status_code == status, (source, destination, response.text)
        assert temporal.started == []
        await books.nothing_written()


class TestWalletsAndNotifications:
    async def test_a_client_sees_its_own_balances(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        alice, bob = await people.client(), await people.client()
        await books.fund_wallet(alice, "120.50")
        await books.fund_wallet(alice, "3000", "JPY")
        await books.fund_wallet(bob, "99.00")
        wallets = (await api.get("/v1/me/wallets", headers=alice.headers)).json()
        assert wallets == [
            {"currency": "JPY", "available": "3000", "held": "0"},
            {"currency": "USD", "available": "120.50", "held": "0.00"},
        ]
        assert (await api.get("/v1/me/notifications", headers=alice.headers)).json() == []


class TestDepositAnswersWithThePaymentSession:
    async def test_the_answer_carries_the_page_and_a_repeat_gives_back_the_same_deposit(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        temporal.session = PaymentSession(
            provider="cardco", provider_ref="pi_1", redirect_url="https://psp/cardco/pay/pi_1"
        )
        idem = key()
        first = await post(api, "/v1/me/deposits", client, deposit(), idem)
        assert first.status_code == 202, first.text
        view = first.json()
        assert (view["status"], view["redirect_url"], view["transfer_reference"]) == (
            "awaiting_funds",
            "https://psp/cardco/pay/pi_1",
            None,
        )
        [(name, request, workflow_id)] = temporal.started
        assert (name, workflow_id) == (DEPOSIT.name, f"deposit-{view['id']}")
        assert isinstance(request, DepositInput) and request.reference == view["reference"]
        # Stored in the request's own transaction, with the audit entry the workflow's
        # `record_payment_session` would write (which then finds it there and writes nothing).
        [payment] = await books.rows(Payment)
        assert (payment.status, payment.provider_ref, payment.redirect_url) == (
            "awaiting_funds",
            "pi_1",
            "https://psp/cardco/pay/pi_1",
        )
        [moved] = await books.rows(AuditEntry, AuditEntry.action == "payment.awaiting_funds")
        assert (moved.actor_kind, moved.on_behalf_of, moved.entity_id) == (
            "system",
            str(client.id),
            view["id"],
        )
        assert (moved.before, moved.after) == (
            {"status": "initiated"},
            {"status": "awaiting_funds"},
        )
        polled = await api.get(f"/v1/me/payments/{view['id']}", headers=client.headers)
        assert polled.json() == view

        again = await post(api, "/v1/me/deposits", client, deposit(), idem)
        assert again.status_code == 202 and again.json() == view
        assert len(temporal.started) == 1 and await books.count(Payment) == 1
