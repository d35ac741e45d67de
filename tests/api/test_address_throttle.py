"""An address guessing many accounts at once is counted before each password is checked: a
parallel burst meets the address's delay as if its guesses came one by one. Time is the app's
clock, moved by the test; the burst is concurrent requests, nothing sleeps."""

from __future__ import annotations

import asyncio

import httpx

from settings import ThrottleLimit
from tests.api.test_brute_force import WRONG, Clock, clock, use_rules
from tests.support.people import PASSWORD, People

__all__ = ["clock"]  # the fixture, used here by name


async def test_parallel_guesses_at_many_accounts_are_counted_before_the_hash(
    api: httpx.AsyncClient, people: People, clock: Clock
) -> None:
    use_rules(api, login_address=ThrottleLimit(free=4, lock_after=50))
    victim = await people.client()
    burst = await asyncio.gather(
        *(
            api.post(
                "/v1/auth/client/login",
                json={"email": f"guess-{n}@example.com", "password": WRONG},
            )
            for n in range(24)
        )
    )
    statuses = [response.status_code for response in burst]
    assert set(statuses) <= {401, 429}
    # The four free ones and the one that starts the delay reach a password check; no more.
    assert 1 <= statuses.count(401) <= 5, statuses
    refused = [r for r in burst if r.status_code == 429]
    assert refused and all("your address" in r.json()["detail"] for r in refused)
    right = {"email": victim.email, "password": PASSWORD}
    assert (await api.post("/v1/auth/client/login", json=right)).status_code == 429
    clock.advance(60)
    assert (await api.post("/v1/auth/client/login", json=right)).status_code == 200


async def test_right_passwords_give_the_address_its_count_back(
    api: httpx.AsyncClient, people: People, clock: Clock
) -> None:
    """An office behind one address that logs in all day never meets the address's delay."""
    use_rules(api, login_address=ThrottleLimit(free=2, lock_after=5))
    client = await people.client()
    right = {"email": client.email, "password": PASSWORD}
    for _ in range(8):
        assert (await api.post("/v1/auth/client/login", json=right)).status_code == 200
    for n in range(2):  # still the two free failures
        wrong = {"email": f"typo-{n}@example.com", "password": WRONG}
        assert (await api.post("/v1/auth/client/login", json=wrong)).status_code == 401
