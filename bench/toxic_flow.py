"""Toxic-flow detection: precision and recall of client profiling per trader archetype.

    python -m bench.toxic_flow [--size 700] [--hours 24] [--seed 7] [--deadline 900]

Starts the MT5 simulator as a process with its realistic population (`--population SIZE`
clients, a hedger being two accounts, every archetype of the flow generator in turn) on a
simulated clock set explicitly (`--population-start`, a Wednesday; markets always open, so the
run is the same on a weekend) for `--hours` simulated hours, and waits until the population
reports its end (deadline: exit 1 if it is not reached, or if the population is smaller than
500 accounts or lacks an archetype). Then, as BrokerFlow would, over the Web API
(`mt5_adapter`): the accounts (`user/logins`, `user/get_batch`: one person's accounts share
an e-mail), their deals (`deal/get_batch` by pages of logins) and the broker's quotes
(`tick/history`), the metrics and classification of `domain.profiling` (which never sees the
truth), and only then the ground truth (`/_sim/archetypes`) to grade it.

The baseline, in the same run: the same accounts classified by holding time alone (median hold
<= 30 s: latency arbitrage; <= 5 min: scalping), the naive rule a dealing desk starts with.

Last line: `RESULT precision_<archetype>=… recall_<archetype>=… …` for every archetype, then
the baseline's for the two toxic ones, accounts, deals and seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from bench._simulator import start_simulator
from bench.ingest import gateway_at
from domain.profiling import (
    AccountMetrics,
    Profile,
    QuoteTape,
    Settings,
    Tick,
    TradeDeal,
    classify,
    profile_accounts,
)

START = datetime(2026, 11, 4, tzinfo=UTC)  # a Wednesday, 00:00 UTC
MIN_ACCOUNTS = 500
LOGIN_PAGE = 100
ARCHETYPE_OF = {
    Profile.HEDGING: "hedger",
    Profile.LATENCY_ARBITRAGE: "latency_arbitrageur",
    Profile.NEWS_TRADING: "news_trader",
    Profile.SCALPING: "scalper",
    Profile.GRID_EA: "grid_ea",
    Profile.PROFITABLE_DIRECTIONAL: "profitable_swing",
    Profile.LOSING_DIRECTIONAL: "losing_retail",
}


def wait_for_population(
    port: int, process_alive: Callable[[], bool], deadline_s: float
) -> dict[str, object]:
    """Poll `/_sim/flow` until the population reached its end; exit past the deadline."""
    deadline = time.monotonic() + deadline_s
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        if not process_alive():
            raise SystemExit("the simulator stopped before its population's end")
        try:
            last = httpx.get(f"http://127.0.0.1:{port}/_sim/flow", timeout=30).json()
        except httpx.HTTPError:
            last = {}
        if last.get("done"):
            return last
        time.sleep(1)
    raise SystemExit(f"the population did not reach its end within {deadline_s:.0f} s: {last}")


async def read_back_office(
    port: int, since: datetime, until: datetime
) -> tuple[list[TradeDeal], dict[str, QuoteTape], dict[int, str]]:
    """What BrokerFlow reads: accounts and their owners, deals, the broker's quotes."""
    mt5 = gateway_at(port)
    settings = Settings()
    try:
        logins = await mt5.logins("*")
        owners: dict[int, str] = {}
        deals: list[TradeDeal] = []
        for first in range(0, len(logins), LOGIN_PAGE):
            page = logins[first : first + LOGIN_PAGE]
            users = await mt5.records("user/get_batch", {"login": ",".join(map(str, page))})
            owners |= {int(u["Login"]): u.get("Email") or u["Login"] for u in users}
            for record in await mt5.deal_records("*", since, until, logins=page):
                deal = TradeDeal.from_record(record)
                if deal is not None:
                    deals.append(deal)
        tapes: dict[str, QuoteTape] = {}
        for symbol in sorted({d.symbol for d in deals}):
            ticks: list[Tick] = []
            moment = since
            while moment < until:  # an hour a request: well under the answer's size limit
                upto = min(until, moment + timedelta(hours=1)) - timedelta(seconds=1)
                for stamp, bid, ask in await mt5.tick_history(symbol, moment, upto):
                    ticks.append(Tick(stamp, bid, ask))
                moment += timedelta(hours=1)
            tapes[symbol] = QuoteTape(ticks, settings.jump_spreads)
        return deals, tapes, owners
    finally:
        await mt5.aclose()


def hold_time_baseline(metrics: AccountMetrics) -> str | None:
    """The naive desk rule: short holds are arbitrage, minutes are scalping."""
    if metrics.trades < 10 or metrics.hold_median_s is None:
        return None
    if metrics.hold_median_s <= 30:
        return "latency_arbitrageur"
    if metrics.hold_median_s <= 300:
        return "scalper"
    return None


def grade(
    predicted: dict[int, str | None], truth: dict[int, str], archetype: str
) -> tuple[Decimal, Decimal]:
    chosen = {login for login, p in predicted.items() if p == archetype}
    actual = {login for login, a in truth.items() if a == archetype}
    hits = len(chosen & actual)
    precision = Decimal(hits) / len(chosen) if chosen else Decimal(0)
    recall = Decimal(hits) / len(actual) if actual else Decimal(0)
    return precision, recall


def main(size: int, hours: float, seed: int, deadline_s: float) -> int:
    began = time.monotonic()
    start_msc = int(START.timestamp() * 1000)
    process, port = start_simulator(
        *("--population", str(size), "--population-start", str(start_msc)),
        *("--population-hours", str(hours), "--seed", str(seed)),
    )
    try:
        flow = wait_for_population(port, lambda: process.poll() is None, deadline_s)
        simulated = time.monotonic() - began
        print(f"population of {size} clients: {flow['deals']} deals in {simulated:.1f} s")
        until = START + timedelta(hours=hours)
        read_at = time.monotonic()
        deals, tapes, owners = asyncio.run(read_back_office(port, START, until))
        ticks = sum(len(t.ticks) for t in tapes.values())
        print(
            f"read {len(deals)} trade deals and {ticks} ticks in {time.monotonic() - read_at:.1f} s"
        )

        profiled_at = time.monotonic()
        metrics = profile_accounts(deals, tapes, owners)
        classified = {login: classify(m) for login, m in metrics.items()}
        print(f"profiled {len(metrics)} accounts in {time.monotonic() - profiled_at:.1f} s")

        # Only now the ground truth, for grading.
        truth_answer = httpx.get(f"http://127.0.0.1:{port}/_sim/archetypes", timeout=30).json()
        truth = {int(k): str(v) for k, v in truth_answer["archetypes"].items()}
    finally:
        process.terminate()
        process.wait(timeout=30)

    archetypes = sorted(set(truth.values()))
    counts = Counter(truth.values())
    predicted: dict[int, str | None] = {
        login: ARCHETYPE_OF.get(classified[login].profile) if login in classified else None
        for login in truth
    }
    baseline = {
        login: hold_time_baseline(metrics[login]) if login in metrics else None for login in truth
    }
    profiles = Counter(c.profile.value for c in classified.values() if c.login in truth)
    print(f"accounts per archetype: {dict(sorted(counts.items()))}")
    print(f"profiles found: {dict(sorted(profiles.items()))}")
    for archetype in archetypes:
        wrong = Counter(str(predicted[login]) for login, a in truth.items() if a == archetype)
        print(f"  {archetype:20} classified as {dict(wrong.most_common())}")
    for archetype in archetypes:  # one explanation per archetype, for the reader
        login = min(login for login, a in truth.items() if a == archetype)
        if login in classified:
            print(f"  e.g. {login} ({archetype}): {classified[login].explanation}")

    if len(truth) < MIN_ACCOUNTS or set(archetypes) != set(ARCHETYPE_OF.values()):
        print(f"population too small: {len(truth)} accounts, {dict(counts)}", file=sys.stderr)
        return 1
    fields = []
    for archetype in archetypes:
        precision, recall = grade(predicted, truth, archetype)
        fields += [f"precision_{archetype}={precision:.3f}", f"recall_{archetype}={recall:.3f}"]
    for archetype in ("latency_arbitrageur", "scalper"):
        precision, recall = grade(baseline, truth, archetype)
        fields += [
            f"baseline_precision_{archetype}={precision:.3f}",
            f"baseline_recall_{archetype}={recall:.3f}",
        ]
    fields += [
        f"accounts={len(truth)}",
        f"deals={len(deals)}",
        f"hours={hours:g}",
        f"seconds={time.monotonic() - began:.1f}",
    ]
    print("RESULT " + " ".join(fields))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=700, help="clients of the population")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated trading hours")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--deadline", type=float, default=900.0, help="seconds to wait for the population"
    )
    arguments = parser.parse_args()
    sys.exit(main(arguments.size, arguments.hours, arguments.seed, arguments.deadline))
