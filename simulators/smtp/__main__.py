"""`python -m simulators.smtp --smtp-port P --http-port H [--host 127.0.0.1] [--auth USER:PASS]`."""

from __future__ import annotations

import argparse

import uvicorn

from simulators.smtp.catcher import DEFAULT_CAPACITY, Mailbox, build_app, start_smtp


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.smtp", description=__doc__)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--auth",
        metavar="USER:PASSWORD",
        help="require SMTP AUTH (PLAIN/LOGIN, no TLS needed) with these credentials",
    )
    parser.add_argument(
        "--max-messages",
        type=int,
        default=DEFAULT_CAPACITY,
        help="messages kept; the oldest are dropped beyond it",
    )
    args = parser.parse_args()
    credentials: tuple[str, str] | None = None
    if args.auth is not None:
        username, separator, password = args.auth.partition(":")
        if not separator or not username:
            parser.error("--auth takes USER:PASSWORD")
        credentials = (username, password)
    mailbox = Mailbox(args.max_messages)
    controller = start_smtp(mailbox, args.host, args.smtp_port, credentials)
    try:
        print(
            f"SMTP catcher listening on smtp://{args.host}:{args.smtp_port}, "
            f"HTTP on http://{args.host}:{args.http_port}",
            flush=True,
        )
        uvicorn.run(build_app(mailbox), host=args.host, port=args.http_port, log_level="warning")
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
