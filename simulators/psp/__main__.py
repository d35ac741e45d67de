"""`python -m simulators.psp --port P --webhook-url URL [--card-secret S] [--bank-secret S]`."""

from __future__ import annotations

import argparse

import uvicorn

from simulators.psp.app import build_app
from simulators.psp.bank import BankCo
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
    args = parser.parse_args()
    outbox = Outbox(args.webhook_url)
    app = build_app(
        CardCo(args.card_secret, args.card_api_key, outbox),
        BankCo(args.bank_secret, args.bank_api_key, outbox),
        outbox,
    )
    print(f"PSP simulator listening on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
