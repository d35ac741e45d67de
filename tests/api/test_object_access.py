"""Clients and IBs see only their own objects; anybody else's answer as if they did not exist."""

from __future__ import annotations

import httpx

from tests.api.conftest import Books
from tests.support.people import People


async def test_a_client_sees_only_its_own_accounts_applications_and_credentials(
    api: httpx.AsyncClient, people: People
) -> None:
    alice, bob = await people.client(), await people.client()
    alice_app = await people.mt5_account(alice, 5_100_001)
    bob_app = await people.mt5_account(bob, 5_100_002)

    assert [
        a["login"] for a in (await api.get("/v1/me/accounts", headers=alice.headers)).json()
    ] == [5_100_001]
    assert (await api.get("/v1/me/accounts/5100001", headers=alice.headers)).status_code == 200
    for path in (
        "/v1/me/accounts/5100002",
        f"/v1/me/applications/{bob_app}",
    ):
        assert (await api.get(path, headers=alice.headers)).status_code == 404, path
    stolen = await api.post("/v1/me/accounts/5100002/credentials", headers=alice.headers)
    assert stolen.status_code == 404
    # Bob's passwords are still there for Bob, exactly once.
    first = await api.post("/v1/me/accounts/5100002/credentials", headers=bob.headers)
    assert first.status_code == 200 and first.json()["password"] == "Main#Pass123"
    assert (
        await api.post("/v1/me/accounts/5100002/credentials", headers=bob.headers)
    ).status_code == 410
    assert (
        await api.get(f"/v1/me/applications/{alice_app}", headers=alice.headers)
    ).status_code == 200


async def test_an_ib_sees_only_the_clients_it_referred(
    api: httpx.AsyncClient, people: People
) -> None:
    x, y = await people.ib(), await people.ib()
    mine = await people.client(referred_by=x.id)
    theirs = await people.client(referred_by=y.id)
    listed = (await api.get("/v1/ib/clients", headers=x.headers)).json()
    assert [c["id"] for c in listed] == [str(mine.id)]
    assert "email" not in listed[0]
    assert (await api.get(f"/v1/ib/clients/{mine.id}", headers=x.headers)).status_code == 200
    assert (await api.get(f"/v1/ib/clients/{theirs.id}", headers=x.headers)).status_code == 404


async def test_a_client_sees_only_its_own_payments_transfers_and_wallets(
    api: httpx.AsyncClient, people: People, books: Books
) -> None:
    alice, bob = await people.client(), await people.client()
    bobs_payment = await books.payment(bob, direction="deposit", status="awaiting_funds")
    bobs_login = await books.live_account(bob)
    await books.fund_wallet(bob, "10.00")
    assert (await api.get("/v1/me/payments", headers=alice.headers)).json() == []
    assert (await api.get("/v1/me/wallets", headers=alice.headers)).json() == []
    assert (
        await api.get(f"/v1/me/payments/{bobs_payment.id}", headers=alice.headers)
    ).status_code == 404
    assert (
        await api.get(f"/v1/me/transfers/{bobs_payment.id}", headers=alice.headers)
    ).status_code == 404
    for path, body in (
        (
            "/v1/me/deposits",
            {"provider": "cardco", "amount": "20", "currency": "USD", "mt5_login": bobs_login},
        ),
        (
            "/v1/me/transfers",
            {
                "amount": "5",
                "currency": "USD",
                "source": {"kind": "mt5", "login": bobs_login},
                "destination": {"kind": "wallet", "currency": "USD"},
            },
        ),
    ):
        response = await api.post(
            path, json=body, headers={**alice.headers, "Idempotency-Key": "k1"}
        )
        assert response.status_code == 404, (path, response.text)
    bobs_view = await api.get(f"/v1/me/payments/{bobs_payment.id}", headers=bob.headers)
    assert bobs_view.status_code == 200
