"""HTTP/1.1 over raw asyncio streams (h11), so sessions can be bound to TCP connections and
faults can drop a connection at exactly the right moment.

Session rules (the reference's reading): a session is the TCP connection that authenticated,
identified also by the cookie `MT5WEBAPI_SESSION` set by `auth/answer`; a request on another
connection, with a cookie that is not this connection's, or after 180 s of silence gets HTTP 403
without an envelope. The real cookie name is undocumented, so a client that keeps the connection
but sends no cookie is served (a stricter real server would still accept the reference's clients).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import secrets
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11

from simulators.mt5 import retcodes as rc
from simulators.mt5.auth import matches, proof
from simulators.mt5.commands import Call, Commands, deal_record, encode_envelope, user_record
from simulators.mt5.engine import DealerRule
from simulators.mt5.faults import FaultPlan, FaultRule
from simulators.mt5.flow import TraderFlow
from simulators.mt5.retcodes import Refusal, retcode_text
from simulators.mt5.trade_commands import TradeCommands

log = logging.getLogger("simulators.mt5")
COOKIE = "MT5WEBAPI_SESSION"
AUTH_WINDOW_SECONDS = 10.0
IDLE_TIMEOUT_SECONDS = 180.0
MAX_BODY = 8 * 1024 * 1024


class DropConnection(Exception):
    """Close the socket without answering (a lost answer, as seen by the client)."""


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
    recent: deque[float] = field(default_factory=deque)  # request times in the last second


@dataclass
class Limits:
    """Server behaviour a test can tighten: session idle timeout, requests per connection."""

    session_timeout: float = IDLE_TIMEOUT_SECONDS
    requests_per_second: int = 0  # 0: no limit
    down_until: float = 0.0  # a restart in progress refuses connections until then


@dataclass
class Session:
    connection_id: int
    last_seen: float = field(default_factory=time.monotonic)


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: list[tuple[str, str]] = field(default_factory=list)


class Mt5Server:
    def __init__(
        self,
        commands: Commands,
        manager: Manager,
        faults: FaultPlan,
        flow: TraderFlow | None = None,
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
        self._next_connection = 0

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
                try:
                    reply = await self.handle(connection, target, headers, body)
                except DropConnection:
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
                target = event.target.decode()
                headers = {k.decode().lower(): v.decode() for k, v in event.headers}
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
        if url.path == "/_sim/restart":
            self.restart(float(params.get("down_seconds", "0")), keep=connection.id)
            return Reply(200, {"restarted": True}, [("Connection", "close")])
        if url.path.startswith("/_sim/"):
            return self.admin(url.path, params, headers.get(":method", ""), raw_body)
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
        if self._too_frequent(connection):
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
            return Reply(200, {"retcode": retcode_text(rc.OK)}, [("Connection", "close")])
        envelope = self.run_command(url.path.removeprefix("/api/"), params, raw_body)
        if any(rule.mode == "drop_after_commit" for rule in rules):
            raise DropConnection
        return Reply(200, envelope)

    def run_command(self, name: str, params: dict[str, str], raw_body: bytes) -> dict[str, Any]:
        command = self.table.get(name)
        if command is None:
            return {"retcode": retcode_text(rc.API_NOTSUPPORTED)}
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
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
        now = time.monotonic()
        if session is None or session.connection_id != connection.id:
            return None
        if now - session.last_seen > self.limits.session_timeout:
            del self.sessions[token]
            return None
        session.last_seen = now
        return token

    def _too_frequent(self, connection: Connection) -> bool:
        """MT5 throttles each manager connection: past the limit it answers 12, applying nothing."""
        if not self.limits.requests_per_second:
            return False
        now = time.monotonic()
        while connection.recent and now - connection.recent[0] > 1.0:
            connection.recent.popleft()
        if len(connection.recent) >= self.limits.requests_per_second:
            return True
        connection.recent.append(now)
        return False

    def restart(self, down_seconds: float, keep: int) -> None:
        """Every connection (but the admin's own, `keep`) and every session is gone; the books
        survive, as they do on disk; for `down_seconds` new connections are closed at once."""
        self.commands.save()
        self.sessions.clear()
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
        if login != self.manager.login:
            return Reply(200, {"retcode": retcode_text(rc.AUTH_ACCOUNT_INVALID)})
        if not self.manager.may_connect_from(connection.ip):
            return Reply(200, {"retcode": retcode_text(rc.AUTH_MANAGER_IPBLOCK)})
        connection.pending_rand = os.urandom(16).hex()
        connection.pending_since = time.monotonic()
        return Reply(
            200,
            {
                "retcode": retcode_text(rc.OK),
                "version_access": "1290",
                "srv_rand": connection.pending_rand,
            },
        )

    def auth_answer(self, connection: Connection, params: dict[str, str]) -> Reply:
        pending, connection.pending_rand = connection.pending_rand, None
        answer, cli_rand = params.get("srv_rand_answer", ""), params.get("cli_rand", "")
        if pending is None or time.monotonic() - connection.pending_since > AUTH_WINDOW_SECONDS:
            return Reply(200, {"retcode": retcode_text(rc.USR_INVALID_PASSWORD)})
        try:
            if len(bytes.fromhex(cli_rand)) != 16 or len(bytes.fromhex(answer)) != 16:
                raise ValueError
        except ValueError:
            return Reply(200, {"retcode": retcode_text(rc.ERR_PARAMS)})
        if not matches(self.manager.password, pending, answer):
            return Reply(200, {"retcode": retcode_text(rc.USR_INVALID_PASSWORD)})
        token = secrets.token_hex(16)
        self.sessions[token] = Session(connection.id)
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

    def admin(self, path: str, params: dict[str, str], method: str, raw_body: bytes) -> Reply:
        books = self.commands.books
        if path == "/_sim/faults":
            if raw_body.strip():
                try:
                    raw = json.loads(raw_body)
                    rules = [FaultRule.parse(r) for r in raw.get("rules", [])]
                except (ValueError, KeyError, TypeError) as exc:
                    return Reply(400, {"error": str(exc)})
                self.faults.replace(rules, raw.get("seed"))
            elif method == "DELETE":
                self.faults.replace([], None)
            return Reply(200, self.faults.describe())
        if path == "/_sim/quotes" and raw_body.strip():
            try:
                stopped = self.trading.set_quotes(json.loads(raw_body))
            except (ValueError, TypeError, Refusal) as exc:
                return Reply(400, {"error": str(exc)})
            return Reply(200, {"stopped_out": stopped})
        if path == "/_sim/rollover":
            self.trading.rollover(int(params.get("weekday", "1")))
            return Reply(200, {"done": True})
        if path == "/_sim/dealer":
            engine = self.commands.engine
            if raw_body.strip():
                try:
                    engine.dealer_rules = [DealerRule(**r) for r in json.loads(raw_body)["rules"]]
                except (ValueError, KeyError, TypeError) as exc:
                    return Reply(400, {"error": str(exc)})
            return Reply(200, {"rules": [asdict(r) for r in engine.dealer_rules]})
        if path == "/_sim/limits":
            if raw_body.strip():
                raw = json.loads(raw_body)
                self.limits.session_timeout = float(
                    raw.get("session_timeout", IDLE_TIMEOUT_SECONDS)
                )
                self.limits.requests_per_second = int(raw.get("requests_per_second", 0))
            return Reply(
                200,
                {
                    "session_timeout": self.limits.session_timeout,
                    "requests_per_second": self.limits.requests_per_second,
                },
            )
        if path == "/_sim/flow" and self.flow is not None:
            if raw_body.strip():
                self.flow.running = bool(json.loads(raw_body).get("running", True))
            return Reply(200, {"running": self.flow.running, "deals": len(books.deals)})
        if path == "/_sim/archetypes":
            truth = self.flow.archetypes if self.flow else {}
            return Reply(200, {"archetypes": {str(k): v for k, v in truth.items()}})
        if path == "/_sim/state/users":
            return Reply(200, {"users": [user_record(u) for u in books.users.values()]})
        if path == "/_sim/state/deals":
            login = params.get("login")
            deals = books.deals if login is None else books.deals_of(int(login))
            return Reply(200, {"deals": [deal_record(d) for d in deals]})
        return Reply(404, {"error": "unknown simulator endpoint"})
