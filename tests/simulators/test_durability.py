"""The simulator's books survive a crash: every answered write is journaled (fsynced) before the
answer goes out, so after a SIGKILL and a restart it is there and no ticket is handed out twice.

In-process tests take the store apart (journal replay, torn tails, compaction); over-the-wire
tests kill a real simulator process with SIGKILL right after its answers.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.mt5.state import Books, Deal, Position, Store, User
from tests.mt5.test_protocol import log_in_by_hand
from tests.support.processes import Simulator, start_simulator
from tests.support.waiting import until

# -- the store, in process ---------------------------------------------------------------------


def user(login: int, balance: str = "0") -> User:
    return User(
        login=login,
        group="demo\\standard",
        name=f"User {login}",
        password_main="Main#Pass1",
        password_investor="Inv#Pass1",
        leverage=100,
        balance=balance,
    )


def deposit(books: Books, login: int, amount: int) -> Deal:
    """What `trade/balance` does to the books, by hand: a deal and the balance, in place."""
    deal = Deal(
        deal=books.new_ticket(), login=login, action=2, profit=str(amount), comment="", time_msc=1
    )
    books.add_deal(deal)
    books.users[login].balance = str(int(books.users[login].balance) + amount)
    return deal


def journal_of(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def test_a_crash_after_commits_loses_nothing_the_commits_held(tmp_path: Path) -> None:
    path = tmp_path / "books.json"
    store = Store(path)
    books = store.load()
    books.users[5001] = user(5001)
    deposit(books, 5001, 100)
    books.positions[7] = Position(7, 5001, "EURUSD", 0, 100, "1.1")
    books.positions[8] = Position(8, 5001, "EURUSD", 1, 100, "1.2")
    store.commit(books)
    # Changed in place, removed, nested, and the counters: each must reach the journal.
    deposit(books, 5001, 50)
    books.positions[7].volume = 40
    del books.positions[8]
    books.groups["demo\\standard"]["MarginCall"] = 80
    books.requests[1] = {"Retcode": "10009 Request executed"}
    books.next_request = 1
    books.allocate_login()
    store.commit(books)
    # No close, no compaction: the process is gone.

    reloaded = Store(path).load()
    assert reloaded.users == books.users
    assert reloaded.users[5001].balance == "150"  # 100 + 50
    assert reloaded.deals == books.deals and reloaded.deal(books.deals[-1].deal) is not None
    assert reloaded.positions == {7: books.positions[7]} and reloaded.positions[7].volume == 40
    assert reloaded.groups["demo\\standard"]["MarginCall"] == 80
    assert reloaded.requests == {1: {"Retcode": "10009 Request executed"}}
    assert (reloaded.next_ticket, reloaded.next_login, reloaded.next_request) == (
        books.next_ticket,
        books.next_login,
        1,
    )


def test_a_commit_appends_only_the_change_not_the_whole_books(tmp_path: Path) -> None:
    path = tmp_path / "books.json"
    store = Store(path)
    books = store.load()
    for login in range(100_000, 105_000):  # 5000 accounts
        books.users[login] = user(login, "1000")
    for _ in range(25_000):  # a bulk load: snapshotted, not journaled
        deposit(books, 100_000, 1)
    store.commit(books)
    snapshot = path.stat().st_size
    journal = journal_of(path).stat().st_size
    assert snapshot > 1_000_000  # the 5000 users and 25000 deals

    deposit(books, 104_999, 25)
    store.commit(books)
    assert path.stat().st_size == snapshot  # the snapshot is not rewritten per commit
    *_, line = journal_of(path).read_bytes().splitlines()
    record = json.loads(line)
    assert set(record) == {"seq", "deals", "users", "counters"}
    assert list(record["users"]) == ["104999"] and len(record["deals"]) == 1
    assert journal_of(path).stat().st_size - journal < 2_000
    # A commit with nothing new writes nothing.
    store.commit(books)
    assert journal_of(path).read_bytes().splitlines()[-1] == line


def test_a_torn_last_line_was_never_answered_and_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "books.json"
    store = Store(path)
    books = store.load()
    books.users[5001] = user(5001)
    deposit(books, 5001, 100)
    store.commit(books)
    with journal_of(path).open("ab") as journal:
        journal.write(b'{"seq":99,"deals":[[1,5001')  # the write a SIGKILL interrupted
    store = Store(path)
    reloaded = store.load()
    assert reloaded.deals == books.deals
    deposit(reloaded, 5001, 7)  # the journal goes on after the last sound line
    store.commit(reloaded)
    assert Store(path).load().users[5001].balance == "107"  # 100 + 7


def test_a_corrupt_record_before_sound_ones_is_an_error_not_a_silent_loss(tmp_path: Path) -> None:
    path = tmp_path / "books.json"
    store = Store(path)
    books = store.load()
    books.users[5001] = user(5001)
    store.commit(books)
    deposit(books, 5001, 1)
    store.commit(books)
    header, _, second = journal_of(path).read_bytes().splitlines(keepends=True)
    journal_of(path).write_bytes(header + b"garbage\n" + second)
    with pytest.raises(ValueError, match="corrupt"):
        Store(path).load()


def test_a_crash_between_snapshot_and_emptied_journal_replays_nothing_twice(
    tmp_path: Path,
) -> None:
    path = tmp_path / "books.json"
    store = Store(path)
    books = store.load()
    books.users[5001] = user(5001)
    deposit(books, 5001, 100)
    store.commit(books)
    journal = journal_of(path).read_bytes()
    store.compact(books)
    journal_of(path).write_bytes(journal)  # as if the crash came before the journal was emptied
    reloaded = Store(path).load()
    assert len(reloaded.deals) == 1 and reloaded.users[5001].balance == "100"


def test_a_bulk_load_is_snapshotted_and_a_shutdown_compacts(tmp_path: Path) -> None:
    path = tmp_path / "books.json"
    store = Store(path)
    books = store.load()
    books.users[5001] = user(5001)
    for _ in range(25_000):  # more than a journal record should carry
        deposit(books, 5001, 1)
    store.commit(books)
    assert len(journal_of(path).read_bytes().splitlines()) == 1  # only the header
    deposit(books, 5001, 1)
    store.commit(books)
    assert len(journal_of(path).read_bytes().splitlines()) == 2
    store.close(books)
    assert len(journal_of(path).read_bytes().splitlines()) == 1
    reloaded = Store(path).load()
    assert len(reloaded.deals) == 25_001 and reloaded.users[5001].balance == "25001"


def test_a_deleted_built_in_group_stays_deleted_and_new_built_ins_appear(tmp_path: Path) -> None:
    path = tmp_path / "books.json"
    store = Store(path)
    books = store.load()
    del books.groups["demo\\eur"]
    store.commit(books)
    assert "demo\\eur" not in Store(path).load().groups  # through the journal
    store.close(books)
    assert "demo\\eur" not in Store(path).load().groups  # through the snapshot
    # A snapshot from a version that did not have `real\\pro` yet: it appears on load.
    raw = json.loads(path.read_text())
    raw["default_groups"].remove("real\\pro")
    del raw["groups"]["real\\pro"]
    path.write_text(json.dumps(raw))
    groups = Store(path).load().groups
    assert "real\\pro" in groups and "demo\\eur" not in groups


def test_without_a_path_nothing_is_written(tmp_path: Path) -> None:
    store = Store(None)
    books = store.load()
    books.users[5001] = user(5001)
    deposit(books, 5001, 1)
    store.commit(books)
    store.close(books)
    assert list(tmp_path.iterdir()) == []
    assert books.users.touched == set()  # type: ignore[attr-defined]


# -- a real process, killed ----------------------------------------------------------------


@contextmanager
def running(
    artifacts_dir: Path, state: Path, *extra: str
) -> Iterator[tuple[httpx.Client, Simulator]]:
    simulator = start_simulator(
        artifacts_dir / "logs", tls=False, extra=["--state-file", str(state), *extra]
    )
    try:
        with httpx.Client(base_url=simulator.base_url, timeout=30) as http:
            log_in_by_hand(http, simulator.manager, simulator.password)
            yield http, simulator
    finally:
        simulator.child.stop()


def sigkill(simulator: Simulator) -> None:
    """As when the machine dies: no signal handler, no flush, no compaction."""
    os.kill(simulator.child.process.pid, signal.SIGKILL)
    simulator.child.process.wait(10)


def ok(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["retcode"] == "0 Done", body
    return body


def add_user(http: httpx.Client, **fields: object) -> int:
    record = {
        "Group": "demo\\standard",
        "Name": "Durable",
        "Leverage": 100,
        "PassMain": "Main#Pass1",
        "PassInvestor": "Inv#Pass1",
        **fields,
    }
    return int(ok(http.post("/api/user/add", json=record))["login"])


def balance(http: httpx.Client, login: int, amount: str) -> int:
    params: dict[str, str | int] = {"login": login, "type": 2, "balance": amount, "comment": "x"}
    return int(ok(http.get("/api/trade/balance", params=params))["answer"]["Ticket"])


def test_every_answered_write_survives_a_sigkill_and_tickets_only_grow(
    artifacts_dir: Path, tmp_path: Path
) -> None:
    state = tmp_path / "mt5.json"
    answered: dict[int, dict[str, str]] = {}  # ticket -> the deal as deal/get answered it
    with running(artifacts_dir, state) as (http, simulator):
        logins = [add_user(http) for _ in range(3)] + [add_user(http, Login=4_400_001)]
        for round_ in range(10):
            for login in logins:
                ticket = balance(http, login, str(100 + round_))
        for ticket in range(ticket - 5, ticket + 1):
            answered[ticket] = ok(http.get("/api/deal/get", params={"ticket": ticket}))["answer"]
        last = balance(http, logins[0], "1")  # answered: the kill comes right after it
        sigkill(simulator)

    with running(artifacts_dir, state) as (http, _):
        # Each account: 100 + 101 + ... + 109 = 1045, and the first one 1 more.
        for login, expected in zip(logins, ("1046.00", "1045.00", "1045.00", "1045.00")):
            record = ok(http.get("/api/user/get", params={"login": login}))["answer"]
            assert record["Balance"] == expected
        for ticket, deal in answered.items():
            assert ok(http.get("/api/deal/get", params={"ticket": ticket}))["answer"] == deal
        assert ok(http.get("/api/deal/get", params={"ticket": last}))["answer"]["Profit"] == "1.00"
        assert balance(http, logins[1], "5") > last
        assert add_user(http) > max(logins[:3])


def test_dealer_request_ids_survive_a_sigkill(artifacts_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "mt5.json"
    with running(artifacts_dir, state) as (http, simulator):
        login = add_user(http)
        balance(http, login, "10000")
        request = {"Action": 200, "Login": login, "Symbol": "EURUSD", "Type": 0, "Volume": 100}
        sent = ok(http.post("/api/dealer/send_request", json=request))["answer"]["id"]
        result = ok(http.get("/api/dealer/get_request_result", params={"id": sent}))["answer"]
        sigkill(simulator)

    with running(artifacts_dir, state) as (http, _):
        again = ok(http.get("/api/dealer/get_request_result", params={"id": sent}))["answer"]
        assert again == result
        following = ok(http.post("/api/dealer/send_request", json=request))["answer"]["id"]
        assert int(following) > int(sent)


def test_the_trader_flow_loses_no_answered_deal_to_a_sigkill(
    artifacts_dir: Path, tmp_path: Path
) -> None:
    state = tmp_path / "mt5.json"
    flow = ("--traders", "5", "--rate", "200", "--seed", "3")
    with running(artifacts_dir, state, *flow) as (http, simulator):
        until(lambda: http.get("/_sim/flow").json()["deals"] >= 100, "100 generated deals", 60)
        tickets = [int(d["Deal"]) for d in http.get("/_sim/state/deals").json()["deals"]]
        # The newest deals, as the Web API answered them while the flow kept going.
        answered = {
            t: ok(http.get("/api/deal/get", params={"ticket": t}))["answer"] for t in tickets[-20:]
        }
        sigkill(simulator)

    with running(artifacts_dir, state) as (http, _):  # no flow: the books as they were left
        for ticket, deal in answered.items():
            assert ok(http.get("/api/deal/get", params={"ticket": ticket}))["answer"] == deal
        after = [int(d["Deal"]) for d in http.get("/_sim/state/deals").json()["deals"]]
        assert after[: len(tickets)] == tickets  # nothing lost, nothing reordered
        assert balance(http, 9_000_000, "1") > max(after)


def test_a_generated_history_is_durable(artifacts_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "mt5.json"
    history = ("--history", "500", "--history-accounts", "10", "--seed", "5")
    with running(artifacts_dir, state, *history) as (http, simulator):
        assert len(http.get("/_sim/state/deals").json()["deals"]) == 500
        made = http.post("/_sim/history", json={"deals": 30_000, "accounts": 40, "seed": 6})
        assert made.json() == {"deals": 30_000}
        sigkill(simulator)

    with running(artifacts_dir, state) as (http, _):
        assert len(http.get("/_sim/state/deals").json()["deals"]) == 30_500  # 500 + 30000
