"""HTTP/1.1 over raw asyncio streams (h11), so sessions can be bound to TCP connections and
faults can drop a connection at exactly the right moment.

Session rules (the reference's reading): a session is the TCP connection that authenticated,
identified also by the cookie `MT5WEBAPI_SESSION` set by `auth/answer`; a request on another
connection or with a cookie that is not this connection's gets HTTP 403 without an envelope. A
session idle past the timeout (180 s) is over and so is its connection: the server closes it
(a request that races the closing gets 403 and `Connection: close`). The real cookie name is
undocumented, so a client that keeps the connection but sends no cookie is served.

Throttling is per manager login, across all its connections: past `requests_per_second` in the
last second a command gets `12 Too frequent requests` and a login step (`auth/start`,
`auth/answer`, counted apart from commands) `1018 Server is busy`, both without applying.

Every request's changes are committed (journaled and fsynced, see `state.Store`) before a byte
of its answer is written or its connection is dropped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11

from simulators.mt5 import retcodes as rc
from simulators.mt5.auth import matches, proof
from simulators.mt5.commands import Call, Commands, deal_record, encode_envelope, user_record
from simulators.mt5.engine import DealerRule
from simulators.mt5.faults import FaultPlan, FaultRule
from simulators.mt5.flow import Population, TraderFlow
from simulators.mt5.history import generate_history
from simulators.mt5.retcodes import Refusal, retcode_text
from simulators.mt5.state import Deal
from simulators.mt5.trade_commands import TradeCommands

log = logging.getLogger("simulators.mt5")
COOKIE = "MT5WEBAPI_SESSION"
AUTH_WINDOW_SECONDS = 10.0
IDLE_TIMEOUT_SECONDS = 180.0
REAP_SECONDS = 1.0
MAX_BODY = 8 * 1024 * 1024
CLOSE = [("Connection", "close")]
# Bounds of the simulator-only knobs (wider values are refused as bad input).
MAX_UTC_MSC = 4_102_444_800_000  # 2100-01-01
MAX_DOWN_SECONDS = 3600.0
MAX_HISTORY_DEALS = 10_000_000
MAX_RATE = 1_000_000


class DropConnection(Exception):
    """Close the socket without answering (a lost answer, as seen by the client)."""


class BadInput(Exception):
    """A simulator-only request that cannot be applied: answered 400 with the reason."""

    status = 400


class WrongMethod(BadInput):
    status = 405


@dataclass
class Manager:
    login: int
    password: str
    allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network]

    def may_connect_from(self, ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return not self.allowed or any(address in net for net in self.allowed)


@dataclass
class Connection:
    id: int
    ip: str
    pending_rand: str | None = None
    pending_since: float = 0.0
    pending_login: int | None = None  # the manager an `auth/start` named, throttled on answer


@dataclass
class SessionClock:
    """Seconds by which sessions idle and throttling windows pass: monotonic, unless a test froze
    it (`/_sim/limits {"frozen": true}`); `advance` moves it on either way."""

    skew: float = 0.0
    frozen_at: float | None = None

    def now(self) -> float:
        return self.frozen_at if self.frozen_at is not None else time.monotonic() + self.skew

    def freeze(self, frozen: bool) -> None:
        if frozen and self.frozen_at is None:
            self.frozen_at = self.now()
        elif not frozen and self.frozen_at is not None:
            self.skew, self.frozen_at = self.frozen_at - time.monotonic(), None

    def advance(self, seconds: float) -> None:
        if self.frozen_at is not None:
            self.frozen_at += seconds
        else:
            self.skew += seconds


@dataclass
class Limits:
    """Server behaviour a test can tighten: session idle timeout, requests per manager login."""

    session_timeout: float = IDLE_TIMEOUT_SECONDS
    requests_per_second: int = 0  # 0: no limit
    down_until: float = 0.0  # a restart in progress refuses connections until then (monotonic)
    clock: SessionClock = field(default_factory=SessionClock)


@dataclass
class Session:
    connection_id: int
    login: int
    last_seen: float


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class AdminCall:
    method: str
    params: dict[str, str]
    raw_body: bytes
    connection_id: int

    def body(self) -> dict[str, Any] | None:
        """The JSON object POSTed, None without a body."""
        if not self.raw_body.strip():
            return None
        try:
            parsed = json.loads(self.raw_body)
        except (ValueError, RecursionError) as exc:
            raise BadInput(f"the body is not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise BadInput("the body must be a JSON object")
        return parsed

    def required_body(
        self, allowed: Collection[str], required: Collection[str] = ()
    ) -> dict[str, Any]:
        body = self.body()
        if body is None:
            raise BadInput("a JSON object body is required")
        return known_fields(body, allowed, required)

    def param(self, name: str, default: int, low: int, high: int) -> int:
        try:
            value = int(self.params.get(name, str(default)))
        except ValueError:
            raise BadInput(f"{name} must be an integer") from None
        return integer(value, name, low, high)


def known_fields(
    raw: dict[str, Any], allowed: Collection[str], required: Collection[str]
) -> dict[str, Any]:
    if unknown := sorted(set(raw).difference(allowed)):
        raise BadInput(f"unknown fields {unknown}; known: {sorted(allowed)}")
    if missing := sorted(set(required).difference(raw)):
        raise BadInput(f"missing fields {missing}")
    return raw


def integer(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInput(f"{what} must be an integer from {low} to {high}, not {value!r}")
    return value


def number(value: Any, what: str, low: float, high: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise BadInput(f"{what} must be a number from {low:g} to {high:g}, not {value!r}")
    return float(value)


def flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"{what} must be true or false, not {value!r}")
    return value


def text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a string, not {value!r}")
    return value


def price(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadInput(f"{what} must be a price, not {value!r}")
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise BadInput(f"{what} must be a price, not {value!r}") from None
    if not parsed.is_finite() or parsed <= 0:
        raise BadInput(f"{what} must be a positive price, not {value!r}")
    return parsed


class Mt5Server:
    def __init__(
        self,
        commands: Commands,
        manager: Manager,
        faults: FaultPlan,
        flow: TraderFlow | Population | None = None,
    ) -> None:
        self.commands = commands
        self.flow = flow
        self.trading = TradeCommands(commands)
        self.table = {**commands.table(), **self.trading.table()}
        self.manager = manager
        self.faults = faults
        self.sessions: dict[str, Session] = {}
        self.limits = Limits()
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._busy: set[int] = set()  # connections with a request in hand
        self._recent: dict[tuple[str, int], deque[float]] = {}  # ("api"|"auth", login) -> times
        self._next_connection = 0
        self.admin_table: dict[str, Callable[[AdminCall], Reply]] = {
            "/_sim/faults": self.admin_faults,
            "/_sim/quotes": self.admin_quotes,
            "/_sim/rollover": self.admin_rollover,
            "/_sim/dealer": self.admin_dealer,
            "/_sim/limits": self.admin_limits,
            "/_sim/flow": self.admin_flow,
            "/_sim/archetypes": self.admin_archetypes,
            "/_sim/state/users": self.admin_users,
            "/_sim/state/deals": self.admin_deals,
            "/_sim/restart": self.admin_restart,
            "/_sim/time": self.admin_time,
            "/_sim/history": self.admin_history,
        }

    # -- connections -----------------------------------------------------------------------

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if time.monotonic() < self.limits.down_until:
            writer.close()  # restarting: the port answers nothing
            return
        self._next_connection += 1
        peer = writer.get_extra_info("peername") or ("0.0.0.0", 0)
        connection = Connection(self._next_connection, str(peer[0]))
        self._writers[connection.id] = writer
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY)
        try:
            while True:
                request = await self._read_request(conn, reader)
                if request is None:
                    break
                target, headers, body = request
                self._busy.add(connection.id)
                try:
                    reply: Reply | None = await self.handle(connection, target, headers, body)
                except DropConnection:
                    reply = None
                finally:
                    self._busy.discard(connection.id)
                # Durable before a byte of the answer goes out, or the connection is dropped
                # (drop_after_commit drops after applying: the write stays, answered or not).
                self.commands.save()
                if reply is None:
                    break
                writer.write(self._render(conn, reply))
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE:
                    break
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for token in [t for t, s in self.sessions.items() if s.connection_id == connection.id]:
                del self.sessions[token]
            self._writers.pop(connection.id, None)
            writer.close()

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[str, dict[str, str], bytes] | None:
        target, headers, body = "", {}, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                if not data and conn.their_state is h11.IDLE:
                    return None
                continue
            if isinstance(event, h11.Request):
                target = event.target.decode(errors="replace")
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
                headers[":method"] = event.method.decode()
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return target, headers, body
            elif isinstance(event, h11.ConnectionClosed):
                return None

    def _render(self, conn: h11.Connection, reply: Reply) -> bytes:
        payload = b"" if reply.body is None else encode_envelope(reply.body)
        headers = [
            ("Content-Type", "application/json" if reply.body is not None else "text/plain"),
            ("Content-Length", str(len(payload))),
            *reply.headers,
        ]
        out = conn.send(h11.Response(status_code=reply.status, headers=headers)) or b""
        out += conn.send(h11.Data(data=payload)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        return out

    # -- requests --------------------------------------------------------------------------

    async def handle(
        self, connection: Connection, target: str, headers: dict[str, str], raw_body: bytes
    ) -> Reply:
        url = urlsplit(target)
        params = {k.lower(): v for k, v in parse_qsl(url.query, keep_blank_values=True)}
        if url.path.startswith("/_sim/"):
            call = AdminCall(headers.get(":method", ""), params, raw_body, connection.id)
            return self.admin(url.path, call)
        rules = self.faults.for_request(url.path)
        for rule in rules:
            if rule.mode == "latency":
                await asyncio.sleep(rule.latency_ms / 1000)
        if url.path == "/api/auth/start":
            return self.auth_start(connection, params)
        if url.path == "/api/auth/answer":
            return self.auth_answer(connection, params)
        token = self._session_token(connection, headers)
        if token is None:
            return Reply(403, None)
        session = self.sessions[token]
        if self._expired(session):
            del self.sessions[token]
            return Reply(403, None, CLOSE)  # the session is over, and so is its connection
        session.last_seen = self.limits.clock.now()
        if self._throttled("api", session.login):
            return Reply(200, {"retcode": retcode_text(rc.ERR_FREQUENT)})
        for rule in rules:
            if rule.mode == "drop_before_commit":
                raise DropConnection
            if rule.mode == "http_403":
                del self.sessions[token]
                return Reply(403, None)
            if rule.mode == "retcode":
                return Reply(200, {"retcode": retcode_text(rule.retcode)})
        if url.path == "/api/quit":
            del self.sessions[token]
            return Reply(200, {"retcode": retcode_text(rc.OK)}, CLOSE)
        envelope = self.run_command(url.path.removeprefix("/api/"), params, raw_body)
        if any(rule.mode == "drop_after_commit" for rule in rules):
            raise DropConnection  # applied (and committed by the caller), the answer lost
        if (refused := self.faults.refusal_after_commit(rules)) is not None:
            return Reply(200, {"retcode": retcode_text(refused)})  # applied, answered refused
        return Reply(200, envelope)

    def run_command(self, name: str, params: dict[str, str], raw_body: bytes) -> dict[str, Any]:
        command = self.table.get(name)
        if command is None:
            return {"retcode": retcode_text(rc.API_NOTSUPPORTED)}
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except (ValueError, RecursionError):
            return {"retcode": retcode_text(rc.ERR_PARAMS)}
        try:
            return {"retcode": retcode_text(rc.OK), **command(Call(params, body))}
        except Refusal as refusal:
            return {"retcode": retcode_text(refusal.code)}
        except Exception:  # a bug here must look like a server error code, never a crash
            log.exception("command %s failed", name)
            return {"retcode": retcode_text(2)}

    def _session_token(self, connection: Connection, headers: dict[str, str]) -> str | None:
        """The session of this request: the one authenticated on this TCP connection. A cookie,
        when sent, must name it (clients that keep the connection but drop cookies still work;
        a cookie carried to another connection never does)."""
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:
            return None
        morsel = cookie.get(COOKIE)
        if morsel is not None:
            token = morsel.value
        else:
            token = next(
                (t for t, s in self.sessions.items() if s.connection_id == connection.id), ""
            )
        session = self.sessions.get(token)
        if session is None or session.connection_id != connection.id:
            return None
        return token

    def _expired(self, session: Session, grace: float = 0.0) -> bool:
        idle = self.limits.clock.now() - session.last_seen
        return idle > self.limits.session_timeout + grace

    def reap(self, grace: float = 0.0) -> None:
        """Close the connections of sessions idle past the timeout (plus `grace`), as the server's
        side of expiry. One busy with a request is left to find its session expired by itself."""
        for token, session in list(self.sessions.items()):
            if self._expired(session, grace) and session.connection_id not in self._busy:
                del self.sessions[token]
                writer = self._writers.pop(session.connection_id, None)
                if writer is not None:
                    writer.close()

    async def reap_idle(self, stop: asyncio.Event) -> None:
        """Every REAP_SECONDS, close what has been idle a tick past the timeout: a request sent
        just after the timeout meets 403 and a close, not a socket closed under it."""
        while not stop.is_set():
            self.reap(grace=REAP_SECONDS)
            try:
                await asyncio.wait_for(stop.wait(), timeout=REAP_SECONDS)
            except TimeoutError:
                pass

    def _throttled(self, kind: str, login: int) -> bool:
        """MT5 throttles each manager login, whichever of its connections the requests come on:
        past the limit in the last second it answers without applying. Login steps ("auth") are
        counted apart from commands ("api"), so logging in does not eat the command budget."""
        limit = self.limits.requests_per_second
        if not limit:
            return False
        now = self.limits.clock.now()
        recent = self._recent.setdefault((kind, login), deque())
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        if len(recent) >= limit:
            return True
        recent.append(now)
        return False

    def restart(self, down_seconds: float, keep: int) -> None:
        """Every connection (but the admin's own, `keep`) and every session is gone; the books
        survive, as they do on disk; for `down_seconds` new connections are closed at once."""
        self.commands.save()
        self.sessions.clear()
        self._recent.clear()
        for connection_id, writer in list(self._writers.items()):
            if connection_id != keep:
                writer.close()
                del self._writers[connection_id]
        self.limits.down_until = time.monotonic() + down_seconds

    # -- authentication --------------------------------------------------------------------

    def auth_start(self, connection: Connection, params: dict[str, str]) -> Reply:
        try:
            version = int(params.get("version", ""))
            login = int(params.get("login", ""))
        except ValueError:
            return Reply(200, {"retcode": retcode_text(rc.ERR_PARAMS)})
        agent = params.get("agent", "")
        if (
            version < 484
            or not agent
            or " " in agent
            or params.get("type", "").lower() != "manager"
        ):
            return Reply(200, {"retcode": retcode_text(rc.ERR_PARAMS)})
        if self._throttled("auth", login):
            return Reply(200, {"retcode": retcode_text(rc.AUTH_SERVER_BUSY)})
        if login != self.manager.login:
            return Reply(200, {"retcode": retcode_text(rc.AUTH_ACCOUNT_INVALID)})
        if not self.manager.may_connect_from(connection.ip):
            return Reply(200, {"retcode": retcode_text(rc.AUTH_MANAGER_IPBLOCK)})
        connection.pending_rand = os.urandom(16).hex()
        connection.pending_since = self.limits.clock.now()
        connection.pending_login = login
        return Reply(
            200,
            {
                "retcode": retcode_text(rc.OK),
                "version_access": "1290",
                "srv_rand": connection.pending_rand,
            },
        )

    def auth_answer(self, connection: Connection, params: dict[str, str]) -> Reply:
        login = connection.pending_login
        if login is not None and self._throttled("auth", login):
            return Reply(200, {"retcode": retcode_text(rc.AUTH_SERVER_BUSY)})  # still pending
        pending, connection.pending_rand, connection.pending_login = (
            connection.pending_rand,
            None,
            None,
        )
        answer, cli_rand = params.get("srv_rand_answer", ""), params.get("cli_rand", "")
        window = self.limits.clock.now() - connection.pending_since
        if pending is None or login is None or window > AUTH_WINDOW_SECONDS:
            return Reply(200, {"retcode": retcode_text(rc.USR_INVALID_PASSWORD)})
        try:
            if len(bytes.fromhex(cli_rand)) != 16 or len(bytes.fromhex(answer)) != 16:
                raise ValueError
        except ValueError:
            return Reply(200, {"retcode": retcode_text(rc.ERR_PARAMS)})
        if not matches(self.manager.password, pending, answer):
            return Reply(200, {"retcode": retcode_text(rc.USR_INVALID_PASSWORD)})
        token = secrets.token_hex(16)
        self.sessions[token] = Session(connection.id, login, self.limits.clock.now())
        return Reply(
            200,
            {
                "retcode": retcode_text(rc.OK),
                "cli_rand_answer": proof(self.manager.password, cli_rand),
                "version_trade": "3211",
            },
            [("Set-Cookie", f"{COOKIE}={token}; Path=/; HttpOnly")],
        )

    # -- simulator-only admin --------------------------------------------------------------

    def admin(self, path: str, call: AdminCall) -> Reply:
        """Bad input to any admin endpoint is a 400 with the reason, never a crash."""
        handler = self.admin_table.get(path)
        if handler is None:
            return Reply(404, {"error": f"unknown simulator endpoint {path}"})
        try:
            return handler(call)
        except BadInput as bad:
            return Reply(bad.status, {"error": str(bad)})
        except Refusal as refusal:
            return Reply(400, {"error": str(refusal)})

    @staticmethod
    def _methods(call: AdminCall, *allowed: str) -> None:
        if call.method not in allowed:
            raise WrongMethod(f"{call.method} is not one of {', '.join(allowed)} here")

    def admin_faults(self, call: AdminCall) -> Reply:
        self._methods(call, "GET", "POST", "DELETE")
        if call.method == "POST":
            raw = call.required_body({"rules", "seed"}, {"rules"})
            if not isinstance(raw["rules"], list):
                raise BadInput("rules must be a list")
            seed = raw.get("seed")
            if seed is not None:
                integer(seed, "seed", -(2**63), 2**63 - 1)
            try:
                rules = [FaultRule.parse(r) for r in raw["rules"]]
            except ValueError as exc:
                raise BadInput(str(exc)) from None
            self.faults.replace(rules, seed)
        elif call.method == "DELETE":
            self.faults.replace([], None)
        return Reply(200, self.faults.describe())

    def admin_quotes(self, call: AdminCall) -> Reply:
        """`{symbol: [bid, ask]}` (or `[bid, ask, last]`), every one checked before any moves."""
        self._methods(call, "POST")
        raw = call.required_body(self.commands.engine.catalogue)  # its fields: symbols
        for name, prices in raw.items():
            if not isinstance(prices, list) or len(prices) not in (2, 3):
                raise BadInput(f"{name}: a quote is [bid, ask] or [bid, ask, last]")
            bid, ask, *_ = (price(p, f"{name} price") for p in prices)
            if ask < bid:
                raise BadInput(f"{name}: ask {ask} under bid {bid}")
        stopped = self.trading.set_quotes({k: [str(p) for p in v] for k, v in raw.items()})
        return Reply(200, {"stopped_out": stopped})

    def admin_rollover(self, call: AdminCall) -> Reply:
        self._methods(call, "POST")
        self.trading.rollover(call.param("weekday", 1, 0, 6))
        return Reply(200, {"done": True})

    def admin_dealer(self, call: AdminCall) -> Reply:
        self._methods(call, "GET", "POST")
        engine = self.commands.engine
        if call.method == "POST":
            raw = call.required_body({"rules"}, {"rules"})
            if not isinstance(raw["rules"], list):
                raise BadInput("rules must be a list")
            engine.dealer_rules = [self._dealer_rule(r) for r in raw["rules"]]
        return Reply(200, {"rules": [asdict(r) for r in engine.dealer_rules]})

    @staticmethod
    def _dealer_rule(raw: Any) -> DealerRule:
        if not isinstance(raw, dict):
            raise BadInput("a dealer rule is an object")
        known = {"group_mask", "symbol_mask", "markup_points", "a_book", "gateway"}
        known_fields(raw, known, {"group_mask"})
        return DealerRule(
            group_mask=text(raw["group_mask"], "group_mask"),
            symbol_mask=text(raw.get("symbol_mask", "*"), "symbol_mask"),
            markup_points=integer(raw.get("markup_points", 0), "markup_points", 0, 1_000_000),
            a_book=flag(raw.get("a_book", False), "a_book"),
            gateway=text(raw.get("gateway", ""), "gateway"),
        )

    def admin_limits(self, call: AdminCall) -> Reply:
        """Throttling and session expiry; `frozen` stops (or restarts) the clock sessions and
        throttling windows run on and `advance_seconds` moves it on, so a test ages a session or
        empties a window without waiting. Fields left out keep their values."""
        self._methods(call, "GET", "POST")
        if call.method == "POST":
            known = {"requests_per_second", "session_timeout", "frozen", "advance_seconds"}
            raw = call.required_body(known)
            # Every field checked before any applies.
            rate = integer(raw.get("requests_per_second", 0), "requests_per_second", 0, MAX_RATE)
            timeout = number(raw.get("session_timeout", 0), "session_timeout", 0, 10**9)
            frozen = flag(raw.get("frozen", False), "frozen")
            advance = number(raw.get("advance_seconds", 0), "advance_seconds", 0, 10**9)
            if "requests_per_second" in raw:
                self.limits.requests_per_second = rate
            if "session_timeout" in raw:
                self.limits.session_timeout = timeout
            if "frozen" in raw:
                self.limits.clock.freeze(frozen)
            self.limits.clock.advance(advance)
            self.reap()
        return Reply(
            200,
            {
                "session_timeout": self.limits.session_timeout,
                "requests_per_second": self.limits.requests_per_second,
                "frozen": self.limits.clock.frozen_at is not None,
            },
        )

    def admin_flow(self, call: AdminCall) -> Reply:
        self._methods(call, "GET", "POST")
        if self.flow is None:
            return Reply(404, {"error": "no trader flow: start the simulator with --traders N"})
        if call.method == "POST":
            raw = call.required_body({"running"}, {"running"})
            self.flow.running = flag(raw["running"], "running")
        answer: dict[str, Any] = {
            "running": self.flow.running,
            "deals": len(self.commands.books.deals),
        }
        if isinstance(self.flow, Population):
            # The population's simulated clock: where it is, and whether it reached its end.
            answer |= {"utc_msc": self.flow.now, "done": self.flow.done}
        return Reply(200, answer)

    def admin_archetypes(self, call: AdminCall) -> Reply:
        self._methods(call, "GET")
        truth = self.flow.archetypes if self.flow else {}
        return Reply(200, {"archetypes": {str(k): v for k, v in truth.items()}})

    def admin_users(self, call: AdminCall) -> Reply:
        self._methods(call, "GET")
        users = self.commands.books.users.values()
        return Reply(200, {"users": [user_record(u, self.commands.clock) for u in users]})

    def admin_deals(self, call: AdminCall) -> Reply:
        self._methods(call, "GET")
        books = self.commands.books
        login = call.param("login", 0, 0, 2**63 - 1) if "login" in call.params else None
        deals = books.deals if login is None else books.deals_of(login)
        return Reply(200, {"deals": self._deal_records(deals)})

    def _deal_records(self, deals: list[Deal]) -> list[dict[str, str]]:
        return [deal_record(d, self.commands.clock) for d in deals]

    def admin_restart(self, call: AdminCall) -> Reply:
        self._methods(call, "POST")
        try:
            down = float(call.params.get("down_seconds", "0"))
        except ValueError:
            raise BadInput("down_seconds must be a number") from None
        self.restart(number(down, "down_seconds", 0, MAX_DOWN_SECONDS), keep=call.connection_id)
        return Reply(200, {"restarted": True}, CLOSE)

    def admin_time(self, call: AdminCall) -> Reply:
        """`POST {"utc_msc": N}` freezes the trade server's clock at N (UTC ms) and runs every
        end of day that time has reached; `DELETE` lets it run with the wall clock again."""
        self._methods(call, "GET", "POST", "DELETE")
        clock = self.commands.engine.clock
        deals: list[Deal] = []
        if call.method != "GET":
            if call.method == "POST":
                raw = call.required_body({"utc_msc"}, {"utc_msc"})
                clock.frozen_msc = integer(raw["utc_msc"], "utc_msc", 0, MAX_UTC_MSC)
            else:
                clock.frozen_msc = None
            deals = self.commands.engine.roll_over_if_due()
        return Reply(
            200,
            {
                "utc_msc": clock.now_msc(),
                "frozen": clock.frozen_msc is not None,
                "deals": self._deal_records(deals),
            },
        )

    def admin_history(self, call: AdminCall) -> Reply:
        """`{"deals": N, "accounts": M, "seed": S}`: a generated history straight into the books
        (snapshotted rather than journaled when large, see `state.Store`)."""
        self._methods(call, "POST")
        raw = call.required_body({"deals", "accounts", "seed"}, {"deals", "accounts"})
        deals = integer(raw["deals"], "deals", 1, MAX_HISTORY_DEALS)
        accounts = integer(raw["accounts"], "accounts", 1, deals)
        seed = integer(raw.get("seed", 0), "seed", -(2**63), 2**63 - 1)
        try:
            written = generate_history(
                self.commands.books, deals=deals, accounts=accounts, seed=seed
            )
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        return Reply(200, {"deals": written})
