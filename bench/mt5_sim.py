"""The MT5 simulator's sustained deal generation and how fast a client pages deals out of it.

    python -m bench.mt5_sim --size 100000

Starts the simulator as its own process with the trader-flow generator unthrottled, measures
deals per second until `--size` deals exist, pauses the flow, then pages every deal out through
the Web API with BrokerFlow's gateway (`deal/get_page`, 1000 per page, two manager sessions).
Baseline, measured in the same run on the same deal records: a raw JSON encode + decode.
Also the history generator's rate: `--size` deals written into a fresh simulator's books through
`POST /_sim/history` (what `--history` runs at start), over one account per 200 deals (at most
5000), timed from the request to its answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench._simulator import start_simulator
from mt5_adapter.webapi import gateway_for
from settings import Mt5ServerSettings

PAGE = 1000
TRADERS = 70
GENERATION_DEADLINE_S = 600
DEALS_PER_HISTORY_ACCOUNT, MAX_HISTORY_ACCOUNTS = 200, 5000


def start() -> tuple[subprocess.Popen[bytes], int]:
    unthrottled = ["--traders", str(TRADERS), "--rate", "1000000000", "--seed", "7"]
    return start_simulator(*unthrottled)


def generation_rate(admin: httpx.Client, size: int) -> float:
    """Deals per second until `size` exist; exits non-zero if they do not come in time."""
    started = time.monotonic()
    first = admin.get("/_sim/flow").json()["deals"]
    while (count := admin.get("/_sim/flow").json()["deals"]) < size:
        if time.monotonic() - started > GENERATION_DEADLINE_S:
            sys.exit(f"only {count} of {size} deals after {GENERATION_DEADLINE_S} s: not measured")
        time.sleep(0.25)
    elapsed = time.monotonic() - started
    admin.post("/_sim/flow", json={"running": False})
    return float(count - first) / elapsed


async def page_everything(port: int) -> tuple[float, int, list[Any]]:
    gateway = gateway_for(
        Mt5ServerSettings(address=f"127.0.0.1:{port}", tls=False, max_requests_per_second=10_000)
    )
    since, until = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
    logins = range(9_000_000, 9_000_000 + TRADERS * 2)
    pages: list[Any] = []

    async def page_login(login: int) -> None:
        offset = 0
        while True:
            page = await gateway.get_deals_page(login, since, until, offset, PAGE)
            pages.extend(page)
            offset += len(page)
            if len(page) < PAGE:
                return

    await asyncio.gather(gateway.ping(), gateway.ping())  # log both sessions in
    # The server's zone (`time/get`) once, before the clock starts: the gateway asks on first
    # use, and 140 pagers starting together would each ask.
    await gateway.server_zone()
    started = time.perf_counter()
    # The gateway's pool (two manager sessions) carries two pages at a time.
    await asyncio.gather(*(page_login(login) for login in logins))
    elapsed = time.perf_counter() - started
    await gateway.aclose()
    return elapsed, len(pages), pages


def history_rate(size: int) -> float:
    """Deals per second the simulator's history generator writes `size` deals into its books."""
    accounts = max(1, min(MAX_HISTORY_ACCOUNTS, size // DEALS_PER_HISTORY_ACCOUNT))
    simulator, port = start_simulator()  # no flow: the generator has the process to itself
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=GENERATION_DEADLINE_S
        ) as admin:
            started = time.perf_counter()
            body = {"deals": size, "accounts": accounts, "seed": 7}
            written = admin.post("/_sim/history", json=body).raise_for_status().json()["deals"]
            return int(written) / (time.perf_counter() - started)
    finally:
        simulator.terminate()
        simulator.wait()


def json_round_trip_seconds(records: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    json.loads(json.dumps(records))
    return time.perf_counter() - started


def main(size: int) -> None:
    history = history_rate(size)  # before the flow's simulator shares the cores
    simulator, port = start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as admin:
            rate = generation_rate(admin, size)
            elapsed, paged, _ = asyncio.run(page_everything(port))
            records = admin.get("/_sim/state/deals").json()["deals"]
    finally:
        simulator.terminate()
    trade_records = [r for r in records if r["Symbol"]]
    baseline = json_round_trip_seconds(trade_records)
    json_rate = len(trade_records) / baseline
    print(f"generated at {rate:.0f} deals/s; paged {paged} deals in {elapsed:.2f} s")
    print(f"history generator: {size} deals at {history:.0f} deals/s")
    print(
        f"RESULT deals_per_s={rate:.0f} generation_ratio_to_json={rate / json_rate:.3f} "
        f"paged_deals={paged} page_seconds={elapsed:.2f} "
        f"page_ratio_to_json={elapsed / (baseline * paged / max(len(trade_records), 1)):.1f} "
        f"size={size} history_deals_per_s={history:.0f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000, help="deals to generate and page")
    main(parser.parse_args().size)
