"""`python -m ops.seal`: seal a secret (e.g. an MT5 manager password) for configuration files.

Reads the secret from standard input (not the command line, which shell history keeps) and prints
`sealed:v1:...`, encrypted under a fresh data key wrapped by BROKERFLOW_SECRETS_KEY.
"""

from __future__ import annotations

import getpass
import sys

from settings import get_settings, seal_secret


def main() -> None:
    secret = getpass.getpass("secret: ") if sys.stdin.isatty() else sys.stdin.read().strip()
    if not secret:
        raise SystemExit("nothing to seal")
    print(seal_secret(secret, get_settings().secrets_key))


if __name__ == "__main__":
    main()
