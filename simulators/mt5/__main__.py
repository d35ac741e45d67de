"""`python -m simulators.mt5 --port P --manager LOGIN --password PW [--tls]`."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import time
from pathlib import Path

from simulators.mt5.commands import Commands
from simulators.mt5.faults import FaultPlan, FaultRule
from simulators.mt5.feed import PriceFeed, SessionCalendar
from simulators.mt5.flow import Population, TraderFlow
from simulators.mt5.history import generate_history
from simulators.mt5.server import Manager, Mt5Server
from simulators.mt5.state import Store
from simulators.mt5.tls import self_signed_context

MAX_STEPS_PER_SLICE = 500
FEED_SECONDS = 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulators.mt5", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--manager", type=int, required=True, help="manager login")
    parser.add_argument("--password", required=True, help="manager password")
    parser.add_argument("--tls", action="store_true", help="HTTPS with a self-signed certificate")
    parser.add_argument(
        "--state-file",
        type=Path,
        help="keep the books here (and a journal of every commit beside it) across restarts",
    )
    parser.add_argument(
        "--allow-ip", action="append", default=[], help="CIDR the manager may connect from"
    )
    parser.add_argument(
        "--fault", action="append", default=[], help="path=/api/...,mode=...,times=N,..."
    )
    parser.add_argument("--fault-seed", type=int)
    parser.add_argument(
        "--session-timeout", type=float, default=180.0, help="seconds an idle session lives"
    )
    parser.add_argument(
        "--rate-limit", type=int, default=0, help="requests per second per manager (0: none)"
    )
    parser.add_argument("--traders", type=int, default=0, help="accounts the flow generator runs")
    parser.add_argument("--rate", type=float, default=50.0, help="deals per second to generate")
    parser.add_argument("--seed", type=int, default=0, help="seed of prices and trader decisions")
    parser.add_argument(
        "--population",
        type=int,
        default=0,
        help="clients of the realistic flow on a simulated clock (see --population-start)",
    )
    parser.add_argument(
        "--population-start",
        type=int,
        help="UTC milliseconds the population's simulated clock starts at (required with it)",
    )
    parser.add_argument(
        "--population-hours",
        type=float,
        default=24.0,
        help="simulated hours the population trades, then stops",
    )
    parser.add_argument(
        "--sessions", action="store_true", help="refuse trades outside symbols' sessions (10018)"
    )
    parser.add_argument(
        "--market-hours",
        choices=("real", "always"),
        default="real",
        help="when symbols trade: real sessions (FX closed at the weekend) or always open",
    )
    parser.add_argument(
        "--feed", action="store_true", help="move every symbol's price every 100 ms (random walk)"
    )
    parser.add_argument(
        "--timezone",
        type=int,
        default=0,
        help="standard UTC offset of the server's zone in minutes (e.g. 120)",
    )
    parser.add_argument(
        "--daylight", action="store_true", help="EU daylight saving: one hour more in summer"
    )
    parser.add_argument("--config", type=Path, help="groups and symbols as JSON, applied at start")
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="generate this many deals of history (seeded by --seed) at every start",
    )
    parser.add_argument(
        "--history-accounts", type=int, default=1000, help="accounts the history is spread over"
    )
    args = parser.parse_args(argv)
    if args.population and args.traders:
        parser.error("--population and --traders are two flows: choose one")
    if args.population and args.population_start is None:
        parser.error("--population needs --population-start (UTC milliseconds)")
    if args.history and not 1 <= args.history_accounts <= args.history:
        parser.error("--history-accounts must be from 1 to the number of --history deals")
    return args


async def serve(args: argparse.Namespace) -> None:
    store = Store(args.state_file)
    commands = Commands(store.load(), store.commit)
    commands.configure(time_zone_minutes=args.timezone, daylight=args.daylight, config=args.config)
    if args.history:
        generate_history(
            commands.books, deals=args.history, accounts=args.history_accounts, seed=args.seed
        )
        commands.save()
    manager = Manager(
        args.manager, args.password, [ipaddress.ip_network(c, strict=False) for c in args.allow_ip]
    )
    faults = FaultPlan([FaultRule.from_flag(f) for f in args.fault], args.fault_seed)
    commands.engine.enforce_sessions = args.sessions
    commands.engine.calendar = SessionCalendar(always_open=args.market_hours == "always")
    feed = PriceFeed(
        commands.engine.catalogue, args.seed, commands.engine.calendar, commands.engine.clock
    )
    flow: TraderFlow | Population | None = None
    if args.traders:
        flow = TraderFlow(commands.engine, args.traders, args.seed, feed)
    elif args.population:
        flow = Population(
            commands.engine,
            args.population,
            args.seed,
            args.population_start,
            args.population_hours,
        )
    server = Mt5Server(commands, manager, faults, flow)
    server.limits.session_timeout = args.session_timeout
    server.limits.requests_per_second = args.rate_limit
    ssl_context = self_signed_context(args.host) if args.tls else None
    listener = await asyncio.start_server(
        server.serve_connection, args.host, args.port, ssl=ssl_context
    )
    scheme = "https" if args.tls else "http"
    print(f"MT5 simulator listening on {scheme}://{args.host}:{args.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    generator = None
    if isinstance(flow, TraderFlow):
        generator = asyncio.create_task(generate(flow, args.rate, commands, stop))
    elif isinstance(flow, Population):
        generator = asyncio.create_task(populate(flow, commands, stop))
    ticker = asyncio.create_task(tick_all(feed, server, stop)) if args.feed else None
    reaper = asyncio.create_task(server.reap_idle(stop))
    async with listener:
        await stop.wait()
    for task in (generator, ticker, reaper):
        if task is not None:
            await task
    store.close(commands.books)


async def tick_all(feed: PriceFeed, server: Mt5Server, stop: asyncio.Event) -> None:
    """Every symbol moves every FEED_SECONDS; orders, stops and stop-outs follow the prices, and
    a day that ended on the server's clock is rolled over."""
    while not stop.is_set():
        now = server.commands.engine.clock.now_msc()
        quotes = {}
        for name in list(feed.symbols):
            quote = feed.tick(name, now)
            if quote is not None:
                last = feed.last(name)
                quotes[name] = [str(price) for price in (*quote, *([last] if last else []))]
        server.trading.set_quotes(quotes)
        server.commands.engine.roll_over_if_due()
        server.commands.save()
        try:
            await asyncio.wait_for(stop.wait(), timeout=FEED_SECONDS)
        except TimeoutError:
            pass


async def generate(flow: TraderFlow, rate: float, commands: Commands, stop: asyncio.Event) -> None:
    """Keep the flow at `rate` deals per second, in small slices so requests are still served."""
    started, produced = time.monotonic(), 0
    while not stop.is_set():
        if not flow.running:
            started, produced = time.monotonic(), 0
            await asyncio.sleep(0.05)
            continue
        due = rate * (time.monotonic() - started)
        for _ in range(MAX_STEPS_PER_SLICE):
            if produced >= due:
                break
            deals = flow.step(commands.engine.clock.now_msc())
            for deal in deals:
                commands.encoded(deal)  # encode now, while generating, not when paged
            produced += len(deals)
        commands.save()
        await asyncio.sleep(0.01)


POPULATION_SLICE_MS = 10_000


async def populate(population: Population, commands: Commands, stop: asyncio.Event) -> None:
    """Run the population to its end, ten simulated seconds at a time so requests are served
    between slices; the clock stays frozen where it ended."""
    while not stop.is_set() and not population.done:
        if not population.running:
            await asyncio.sleep(0.05)
            continue
        for deal in population.advance(population.now + POPULATION_SLICE_MS):
            commands.encoded(deal)
        commands.engine.roll_over_if_due()
        commands.save()
        await asyncio.sleep(0)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    asyncio.run(serve(parse_args()))


if __name__ == "__main__":
    main()
