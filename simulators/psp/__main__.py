"""`python -m simulators.psp --port P --webhook-url URL [--card-secret S] [--bank-secret S] ...`."""

from __future__ import annotations

import argparse

import uvicorn

from simulators.psp.app import build_app
from simulators.psp.bank import AutoSettle, BankCo
from simulators.psp.card import CardCo
from simulators.psp.webhooks import Outbox


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.psp", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--webhook-url", help="where to POST webhooks (+ /cardco or /bankco)")
    parser.add_argument("--card-secret", default="whsec_card_dev")
    parser.add_argument("--card-api-key", default="sk_card_dev")
    parser.add_argument("--bank-secret", default="whsec_bank_dev")
    parser.add_argument("--bank-api-key", default="sk_bank_dev")
    parser.add_argument(
        "--webhook-retries", type=int, default=8, help="retries of a webhook not answered 2xx"
    )
    parser.add_argument(
        "--webhook-retry-base-ms",
        type=int,
        default=500,
        help="first back-off; doubled after each failed attempt, at most 30 s",
    )
    parser.add_argument(
        "--auto-settle-ms",
        type=int,
        default=0,
        help="BankCo payouts settle by themselves this long after they are made (0: never)",
    )
    args = parser.parse_args()
    outbox = Outbox(args.webhook_url, args.webhook_retries, args.webhook_retry_base_ms)
    bank = BankCo(args.bank_secret, args.bank_api_key, outbox)
    bank.set_auto_settle(AutoSettle(args.auto_settle_ms))
    app = build_app(CardCo(args.card_secret, args.card_api_key, outbox), bank, outbox)
    print(f"PSP simulator listening on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
