"""IB fraud signals, pure: self-referral and commission farming.

An IB earns on its clients' trading, so two abuses pay: being (or funding) its own client
("self-referral"), and making a client trade round trips that only just clear the plan's
anti-scalping rule ("commission farming": every lot pays, no market risk is taken). This module
says which IBs show the signs, from facts the caller gathers (`db.queries.ib_management`); it
decides nothing: a flag is shown to finance with the IB's payouts and cleared by a person.

Rules (docs/ib-payouts.md, "Fraud flags"):

* `self_referral_identity`: a client of the IB has the IB's e-mail (compared case-folded,
  without a `+tag`, and without dots for Gmail), or the same name (case-folded, accents
  removed, words in any order), or owns the MT5 account the IB is paid to.
* `self_referral_payment`: a client of the IB used a payment instrument (bank account) that the
  IB's own client records used (the client owning its payout account, a client with its e-mail).
* `self_referral_ip`: a client of the IB logged in from an address the IB logged in from.
  Loopback, private (RFC 1918, RFC 4193), link-local and unspecified addresses are not compared:
  a shared office network or a proxy proves nothing.
* `commission_farming`: on one login of the IB, at least `min_round_trips` closed pieces of
  positions held *just above* the minimum hold (at least `min_hold_seconds`, less than
  `min_hold_seconds` + max(`window_fraction` * `min_hold_seconds`, `window_min_seconds`)),
  making at least `min_share` of the pieces that cleared the rule. Plans without a minimum
  hold are not judged (there is no line to farm above).

Every flag has an `evidence_key`: the same evidence found again is the same flag (self-referral:
per client; farming: per login and calendar month of the check's end, server clock).
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class FraudRule(StrEnum):
    SELF_REFERRAL_IDENTITY = "self_referral_identity"
    SELF_REFERRAL_PAYMENT = "self_referral_payment"
    SELF_REFERRAL_IP = "self_referral_ip"
    COMMISSION_FARMING = "commission_farming"


@dataclass(frozen=True)
class IbFacts:
    """What identifies an IB: its own e-mail and name, where it logged in from, the payment
    instruments of its own client records, and which client records are its own."""

    ib_id: str
    email: str
    name: str
    ips: frozenset[str] = frozenset()
    instruments: frozenset[str] = frozenset()
    own_client_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ClientFacts:
    """A client the IB is paid for (attributed or referred)."""

    ib_id: str
    client_id: str
    email: str
    name: str
    server: str | None = None
    login: int | None = None
    ips: frozenset[str] = frozenset()
    instruments: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LoginTrades:
    """One login's deals (MT5 Web API field names) and the rule of its IB's plan."""

    ib_id: str
    server: str
    login: int
    min_hold_seconds: int
    deals: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class FarmingThresholds:
    window_fraction: Decimal = Decimal("0.25")
    window_min_seconds: int = 10
    min_round_trips: int = 10
    min_share: Decimal = Decimal("0.5")

    def window(self, min_hold_seconds: int) -> int:
        """How far above the minimum hold a hold is "just above" it, in seconds."""
        scaled = int(self.window_fraction * min_hold_seconds)
        return max(scaled, self.window_min_seconds)


@dataclass(frozen=True)
class Flag:
    ib_id: str
    rule: FraudRule
    evidence_key: str
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)
    client_id: str | None = None
    server: str | None = None
    login: int | None = None


# -- normalisation -------------------------------------------------------------------------------

_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def email_key(email: str) -> str:
    """`John.Doe+ib@GMail.com` and `johndoe@gmail.com` are one mailbox."""
    local, _, domain = email.strip().casefold().rpartition("@")
    if not local:
        return email.strip().casefold()
    local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def name_key(name: str) -> str:
    """Case-folded, accents removed, punctuation as spaces, words sorted: "Müller, Jan" is
    "jan muller"."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = "".join(c if c.isalnum() else " " for c in plain).split()
    return " ".join(sorted(words))


def instrument_key(instrument: str) -> str:
    """A bank account as compared: upper case, without spaces and dashes."""
    return "".join(c for c in instrument.upper() if c.isalnum())


def masked(instrument: str) -> str:
    return f"****{instrument_key(instrument)[-4:]}"


def comparable_ip(address: str) -> bool:
    """Whether a shared address says anything: public ones only (documentation ranges count as
    public here, so tests can use them)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return False
    private = (
        ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
        if ip.version == 4
        else ("fc00::/7",)
    )
    return not any(ip in ipaddress.ip_network(net) for net in private)


# -- self-referral -------------------------------------------------------------------------------


def self_referral(ib: IbFacts, clients: Iterable[ClientFacts]) -> list[Flag]:
    """The self-referral flags of `ib` among `clients` (those of other IBs are ignored)."""
    flags: list[Flag] = []
    ib_email, ib_name = email_key(ib.email), name_key(ib.name)
    ib_instruments = {instrument_key(i) for i in ib.instruments if instrument_key(i)}
    ib_ips = {ip.strip() for ip in ib.ips if comparable_ip(ip)}
    for client in sorted(clients, key=lambda c: (c.client_id, c.server or "", c.login or 0)):
        if client.ib_id != ib.ib_id:
            continue
        matches: list[str] = []
        if email_key(client.email) == ib_email:
            matches.append("email")
        if ib_name and name_key(client.name) == ib_name:
            matches.append("name")
        if client.client_id in ib.own_client_ids:
            matches.append("payout_account_owner")
        if matches:
            flags.append(
                _client_flag(
                    ib,
                    client,
                    FraudRule.SELF_REFERRAL_IDENTITY,
                    detail=f"client shares the IB's {', '.join(matches).replace('_', ' ')}",
                    evidence={"matches": matches},
                )
            )
        shared = sorted(
            i for i in {instrument_key(i) for i in client.instruments} if i in ib_instruments
        )
        if shared:
            shown = [masked(i) for i in shared]
            flags.append(
                _client_flag(
                    ib,
                    client,
                    FraudRule.SELF_REFERRAL_PAYMENT,
                    detail=f"client paid with the IB's own instrument {', '.join(shown)}",
                    evidence={"instruments": shown},
                )
            )
        ips = sorted({ip.strip() for ip in client.ips} & ib_ips)
        if ips:
            flags.append(
                _client_flag(
                    ib,
                    client,
                    FraudRule.SELF_REFERRAL_IP,
                    detail=f"client logged in from the IB's address {', '.join(ips)}",
                    evidence={"ips": ips},
                )
            )
    return flags


def _client_flag(
    ib: IbFacts, client: ClientFacts, rule: FraudRule, detail: str, evidence: dict[str, Any]
) -> Flag:
    return Flag(
        ib_id=ib.ib_id,
        rule=rule,
        evidence_key=f"client:{client.client_id}",
        detail=detail,
        evidence=evidence,
        client_id=client.client_id,
        server=client.server,
        login=client.login,
    )


# -- commission farming --------------------------------------------------------------------------

_TRADES = (0, 1)  # BUY, SELL
_IN, _OUT, _INOUT, _OUT_BY = 0, 1, 2, 3


def holds(deals: Sequence[Mapping[str, Any]], start: int, end: int) -> list[tuple[int, int]]:
    """(close time, hold seconds) of every piece of an opening closed in [start, end), first in
    first out per position; a close whose opening is not among the deals is not a piece."""
    ordered = sorted(
        (d for d in deals if int(d.get("Action", -1)) in _TRADES),
        key=lambda d: (int(d["Time"]), int(d["Deal"])),
    )
    openings: dict[int, deque[list[int]]] = {}
    pieces: list[tuple[int, int]] = []
    for deal in ordered:
        entry, time = int(deal["Entry"]), int(deal["Time"])
        position = int(deal.get("PositionID") or deal["Deal"])
        volume = int(deal.get("Volume") or 0)
        closed = {_OUT: volume, _OUT_BY: volume, _INOUT: int(deal.get("VolumeClosed") or 0)}.get(
            entry, 0
        )
        queue = openings.setdefault(position, deque())
        while closed > 0 and queue:
            opened = queue[0]
            take = min(closed, opened[1])
            if start <= time < end:
                pieces.append((time, time - opened[0]))
            opened[1] -= take
            closed -= take
            if opened[1] == 0:
                queue.popleft()
        opens = volume if entry == _IN else volume - int(deal.get("VolumeClosed") or 0)
        if entry in (_IN, _INOUT) and opens > 0:
            queue.append([time, opens])
    return pieces


def commission_farming(
    trades: LoginTrades,
    start: int,
    end: int,
    thresholds: FarmingThresholds | None = None,
) -> Flag | None:
    """The farming flag of one login over [start, end), or None."""
    limits = thresholds or FarmingThresholds()
    line = trades.min_hold_seconds
    if line <= 0:
        return None
    ceiling = line + limits.window(line)
    pieces = holds(trades.deals, start, end)
    cleared = [hold for _, hold in pieces if hold >= line]
    just_above = [hold for hold in cleared if hold < ceiling]
    if not cleared or len(just_above) < limits.min_round_trips:
        return None
    share = Decimal(len(just_above)) / Decimal(len(cleared))
    if share < limits.min_share:
        return None
    month = datetime.fromtimestamp(end - 1, UTC).strftime("%Y-%m")
    return Flag(
        ib_id=trades.ib_id,
        rule=FraudRule.COMMISSION_FARMING,
        evidence_key=f"login:{trades.server}:{trades.login}:{month}",
        detail=(
            f"{len(just_above)} of {len(cleared)} round trips on {trades.server}/{trades.login} "
            f"held {line} to {ceiling - 1} s, just above the {line} s minimum hold"
        ),
        evidence={
            "just_above": len(just_above),
            "cleared": len(cleared),
            "share": str(share.quantize(Decimal("0.01"))),
            "min_hold_seconds": line,
            "window_seconds": ceiling - line,
            "from": start,
            "to": end,
        },
        server=trades.server,
        login=trades.login,
    )


def detect(
    ibs: Iterable[IbFacts],
    clients: Sequence[ClientFacts],
    trading: Iterable[LoginTrades],
    start: int,
    end: int,
    thresholds: FarmingThresholds | None = None,
) -> list[Flag]:
    """Every flag: self-referral per IB, farming per login; in a stable order, each (IB, rule,
    evidence key) once (a client with several logins is one piece of evidence)."""
    found: dict[tuple[str, FraudRule, str], Flag] = {}
    for ib in sorted(ibs, key=lambda i: i.ib_id):
        for flag in self_referral(ib, clients):
            found.setdefault((flag.ib_id, flag.rule, flag.evidence_key), flag)
    for trades in sorted(trading, key=lambda t: (t.ib_id, t.server, t.login)):
        farming = commission_farming(trades, start, end, thresholds)
        if farming is not None:
            found.setdefault((farming.ib_id, farming.rule, farming.evidence_key), farming)
    return list(found.values())
