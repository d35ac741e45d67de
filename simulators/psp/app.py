"""The processors' HTTP APIs (Starlette), plus a simulator-only `/_sim/` surface."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import date as calendar_day
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from simulators.psp.bank import AutoSettle, BankCo
from simulators.psp.card import CardCo, Ledger
from simulators.psp.webhooks import DeliveryFaults, Outbox


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)


def authorised(request: Request, api_key: str) -> bool:
    return request.headers.get("authorization", "") == f"Bearer {api_key}"


async def json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def settlement_csv(ledger: Ledger, date: str) -> Response:
    selected = ledger.report(date)
    out = io.StringIO()
    if selected:
        writer = csv.DictWriter(out, fieldnames=list(selected[0]))
        writer.writeheader()
        writer.writerows(selected)
    return PlainTextResponse(out.getvalue(), media_type="text/csv")


def build_app(card: CardCo, bank: BankCo, outbox: Outbox) -> Starlette:
    # -- CardCo ------------------------------------------------------------------------------
    async def create_intent(request: Request) -> Response:
        if not authorised(request, card.api_key):
            return error(401, "invalid API key")
        body = await json_body(request)
        try:
            assert body is not None
            amount, currency = int(body["amount"]), str(body["currency"])
            reference = str(body.get("reference", ""))
            name = str((body.get("customer") or {}).get("name", ""))
        except (AssertionError, KeyError, TypeError, ValueError):
            return error(400, "amount (integer minor units) and currency are required")
        if amount <= 0 or len(currency) != 3:
            return error(400, "amount must be positive and currency an ISO code")
        intent = card.create_intent(
            amount, currency, reference, name, request.headers.get("idempotency-key")
        )
        return JSONResponse({**intent.__dict__, "hosted_url": f"/cardco/pay/{intent.id}"})

    async def get_intent(request: Request) -> Response:
        if not authorised(request, card.api_key):
            return error(401, "invalid API key")
        intent = card.intents.get(request.path_params["id"])
        return JSONResponse(intent.__dict__) if intent else error(404, "no such payment intent")

    async def intent_events(request: Request) -> Response:
        """Every event sent about a payment intent (a Stripe-style list): how a merchant that
        lost a webhook finds out what happened."""
        if not authorised(request, card.api_key):
            return error(401, "invalid API key")
        intent_id = request.path_params["id"]
        if intent_id not in card.intents:
            return error(404, "no such payment intent")
        return JSONResponse({"object": "list", "data": card.events.get(intent_id, [])})

    async def hosted_page(request: Request) -> Response:
        intent = card.intents.get(request.path_params["id"])
        if intent is None:
            return error(404, "no such payment intent")
        if request.method == "POST":
            form = await request.form()
            card.pay(intent, str(form.get("outcome", "succeeded")) == "succeeded")
        return HTMLResponse(
            f"<html><body><h1>CardCo</h1><p>Pay {intent.amount / 100:.2f} {intent.currency}</p>"
            f"<p id='status'>{intent.status}</p><form method='post'>"
            "<button name='outcome' value='succeeded'>Pay</button>"
            "<button name='outcome' value='failed'>Decline</button></form></body></html>"
        )

    async def refund(request: Request) -> Response:
        if not authorised(request, card.api_key):
            return error(401, "invalid API key")
        body = await json_body(request) or {}
        intent = card.intents.get(str(body.get("payment_intent", "")))
        if intent is None or intent.status != "succeeded":
            return error(400, "only a succeeded payment intent can be refunded")
        amount = int(body.get("amount", intent.amount - intent.refunded))
        if not 0 < amount <= intent.amount - intent.refunded:
            return error(400, "refund exceeds what is left to refund")
        card.refund(intent, amount)
        return JSONResponse(intent.__dict__)

    async def card_settlement(request: Request) -> Response:
        if not authorised(request, card.api_key):
            return error(401, "invalid API key")
        return settlement_csv(card.settlement, request.path_params["date"])

    # -- BankCo ------------------------------------------------------------------------------
    async def deposit_reference(request: Request) -> Response:
        if not authorised(request, bank.api_key):
            return error(401, "invalid API key")
        body = await json_body(request) or {}
        customer = str(body.get("customer_reference", ""))
        if not customer:
            return error(400, "customer_reference is required")
        return JSONResponse(
            {"reference": bank.deposit_reference(customer), "iban": "GB00BANK00000000000000"}
        )

    async def payout(request: Request) -> Response:
        if not authorised(request, bank.api_key):
            return error(401, "invalid API key")
        body = await json_body(request) or {}
        try:
            amount = Decimal(str(body["amount"]))
            beneficiary = body["beneficiary"]
            made = bank.payout(
                amount,
                str(body["currency"]),
                str(beneficiary["name"]),
                str(beneficiary["iban"]),
                str(body.get("reference", "")),
                request.headers.get("idempotency-key"),
            )
        except (KeyError, TypeError, InvalidOperation):
            return error(400, "amount, currency and beneficiary {name, iban} are required")
        return JSONResponse(made.__dict__, status_code=202)

    async def payout_status(request: Request) -> Response:
        """Where a payout stands, as a bank's API answers a client that lost the webhook."""
        if not authorised(request, bank.api_key):
            return error(401, "invalid API key")
        found = bank.payouts.get(request.path_params["payout_id"])
        if found is None:
            return error(404, "no such payout")
        return JSONResponse(found.__dict__)

    async def reference_events(request: Request) -> Response:
        """Every event sent about a deposit reference (transfers received quoting it)."""
        if not authorised(request, bank.api_key):
            return error(401, "invalid API key")
        reference = request.query_params.get("reference", "")
        if not reference:
            return error(400, "reference is required")
        return JSONResponse({"events": bank.events.get(reference, [])})

    async def bank_settlement(request: Request) -> Response:
        if not authorised(request, bank.api_key):
            return error(401, "invalid API key")
        return settlement_csv(bank.settlement, request.path_params["date"])

    # -- simulator-only ------------------------------------------------------------------------
    async def sim_chargeback(request: Request) -> Response:
        body = await json_body(request) or {}
        intent = card.intents.get(str(body.get("payment_intent", "")))
        if intent is None:
            return error(404, "no such payment intent")
        card.chargeback(intent)
        return JSONResponse(intent.__dict__)

    async def sim_incoming(request: Request) -> Response:
        body = await json_body(request) or {}
        try:
            made = bank.incoming(
                str(body["reference"]),
                Decimal(str(body["amount"])),
                str(body["currency"]),
                str(body.get("payer_name", "")),
            )
        except (KeyError, InvalidOperation):
            return error(400, "reference, amount and currency are required")
        return JSONResponse(made.__dict__)

    async def sim_settle(request: Request) -> Response:
        body = await json_body(request) or {}
        made = bank.payouts.get(str(body.get("payout", "")))
        if made is None:
            return error(404, "no such payout")
        bank.settle(made, str(body.get("outcome", "settled")) == "settled")
        return JSONResponse(made.__dict__)

    async def sim_webhooks(request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request) or {}
            try:
                faults = DeliveryFaults(
                    delay_ms=int(body.get("delay_ms", 0)),
                    duplicate_probability=float(body.get("duplicate_probability", 0)),
                    reorder_window=int(body.get("reorder_window", 0)),
                    drop_probability=float(body.get("drop_probability", 0)),
                )
            except (TypeError, ValueError):
                return error(400, "delay_ms, reorder_window (integers) and probabilities expected")
            chances = (faults.duplicate_probability, faults.drop_probability)
            if (
                faults.delay_ms < 0
                or faults.reorder_window < 0
                or not all(0 <= p <= 1 for p in chances)
            ):
                return error(400, "delays and windows must be >= 0, probabilities within [0, 1]")
            outbox.faults = faults
        if request.method == "DELETE":
            outbox.flush()
        return JSONResponse(
            {"faults": asdict(outbox.faults), "delivered": [asdict(d) for d in outbox.log]}
        )

    async def sim_auto_settle(request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request) or {}
            try:
                rule = AutoSettle(
                    int(body.get("after_ms") or 0),
                    float(body.get("fail_probability", 0)),
                    int(body.get("seed", 0)),
                )
            except (TypeError, ValueError):
                return error(400, "after_ms (integer or null) and fail_probability are expected")
            if rule.after_ms < 0 or not 0 <= rule.fail_probability <= 1:
                return error(400, "after_ms must be >= 0 and fail_probability within [0, 1]")
            bank.set_auto_settle(rule)
        return JSONResponse({"auto_settle": asdict(bank.auto_settle) if bank.auto_settle else None})

    async def sim_settlement(request: Request) -> Response:
        """The settlement reports' day and faults, for both processors: `day` (YYYY-MM-DD, or
        null for today in UTC) dates the rows made from now on; `omit` and `duplicate` (lists of
        payment ids) leave a payment's rows out of its report or list them twice. A field left
        out keeps its value; nothing is applied unless all are valid."""
        ledgers = (card.settlement, bank.settlement)
        if request.method == "POST":
            body = await json_body(request)
            if body is None or set(body) - {"day", "omit", "duplicate"}:
                return error(400, "a JSON object with day, omit and duplicate is expected")
            day = body.get("day", ledgers[0].day)
            try:
                if day is not None:
                    day = calendar_day.fromisoformat(str(day)).isoformat()
            except ValueError:
                return error(400, "day must be a date (YYYY-MM-DD) or null")
            lists: dict[str, list[str]] = {}
            for name in ("omit", "duplicate"):
                ids = body.get(name, [])
                if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                    return error(400, "omit and duplicate are lists of payment ids")
                if name in body:
                    lists[name] = ids
            for ledger in ledgers:
                ledger.day = day
                if "omit" in lists:
                    ledger.omitted = set(lists["omit"])
                if "duplicate" in lists:
                    ledger.doubled = set(lists["duplicate"])
        ledger = ledgers[0]
        return JSONResponse(
            {
                "day": ledger.day,
                "today": ledger.today(),
                "omit": sorted(ledger.omitted),
                "duplicate": sorted(ledger.doubled),
            }
        )

    async def sim_state(request: Request) -> Response:
        """Ground truth: every payment either processor knows of, for tests to reconcile with."""
        return JSONResponse(
            {
                "cardco": {"intents": [asdict(i) for i in card.intents.values()]},
                "bankco": {
                    "deposit_references": [
                        {"reference": reference, "customer_reference": customer}
                        for reference, customer in bank.references.items()
                    ],
                    "transfers": [asdict(t) for t in bank.transfers],
                    "payouts": [asdict(p) for p in bank.payouts.values()],
                },
            }
        )

    return Starlette(
        routes=[
            Route("/cardco/v1/payment_intents", create_intent, methods=["POST"]),
            Route("/cardco/v1/payment_intents/{id}", get_intent, methods=["GET"]),
            Route("/cardco/v1/payment_intents/{id}/events", intent_events, methods=["GET"]),
            Route("/cardco/pay/{id}", hosted_page, methods=["GET", "POST"]),
            Route("/cardco/v1/refunds", refund, methods=["POST"]),
            Route("/cardco/v1/settlements/{date}.csv", card_settlement, methods=["GET"]),
            Route("/bankco/api/deposit_references", deposit_reference, methods=["POST"]),
            Route("/bankco/api/payouts", payout, methods=["POST"]),
            Route("/bankco/api/payouts/{payout_id}", payout_status, methods=["GET"]),
            Route("/bankco/api/events", reference_events, methods=["GET"]),
            Route("/bankco/api/settlements/{date}.csv", bank_settlement, methods=["GET"]),
            Route("/_sim/cardco/chargeback", sim_chargeback, methods=["POST"]),
            Route("/_sim/bankco/incoming", sim_incoming, methods=["POST"]),
            Route("/_sim/bankco/settle", sim_settle, methods=["POST"]),
            Route("/_sim/bankco/auto_settle", sim_auto_settle, methods=["GET", "POST"]),
            Route("/_sim/webhooks", sim_webhooks, methods=["GET", "POST", "DELETE"]),
            Route("/_sim/settlement", sim_settlement, methods=["GET", "POST"]),
            Route("/_sim/state", sim_state, methods=["GET"]),
        ]
    )
