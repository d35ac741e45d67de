"""Checks before the API listens: the dev default secrets are for a laptop only.

`env=prod` refuses them already (settings.py). In dev and test the API says loudly that it runs
on them, and refuses to listen on anything but a loopback address while it does: a token
signed with a key published in settings.py would be accepted as anyone's from the network.
"""

from __future__ import annotations

import ipaddress
import socket

from settings import DEV_ONLY, Settings

BANNER = "!" * 78


def default_secrets(settings: Settings) -> list[str]:
    """The settings still on their published dev values."""
    return [
        f"BROKERFLOW_{name.upper()}"
        for name in ("jwt_secret", "secrets_key", "documents_key")
        if getattr(settings, name).get_secret_value() == DEV_ONLY[name]
    ]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except (OSError, ValueError):
            return False


class UnsafeListen(SystemExit):
    pass


def check_listen(settings: Settings) -> str | None:
    """A warning to print when the API runs on dev secrets; raises `UnsafeListen` when it would
    listen beyond this machine with them. None when every secret is set."""
    defaults = default_secrets(settings)
    if not defaults:
        return None
    names = ", ".join(defaults)
    if not is_loopback(settings.api_host):
        raise UnsafeListen(
            f"refusing to listen on {settings.api_host}: {names} still have the dev-only values "
            "published in settings.py, so anyone who can reach this address could sign their "
            "own admin token. Set them (see .env.example) or listen on 127.0.0.1."
        )
    return (
        f"\n{BANNER}\n!! DEV SECRETS: {names} have the dev-only values published in "
        f"settings.py.\n!! Anyone with them can sign tokens for any user. Listening on "
        f"{settings.api_host} only; never expose this server.\n{BANNER}\n"
    )
