"""Where load may go: loopback unless the user named a target explicitly (pure, no locust)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["check_target", "is_loopback_url"]


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs on 127.0.0.0/8, ::1 or ``localhost``."""
    host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_target(explicit_host: str | None, class_hosts: Iterable[str | None]) -> str | None:
    """Why a run must not start, or None. An explicit ``--host`` may point anywhere; a
    host that only comes from a locustfile's default must be loopback."""
    if explicit_host:
        return None
    for host in class_hosts:
        if host and not is_loopback_url(host):
            return (
                f"the locustfile's default host {host!r} is not on 127.0.0.0/8; "
                "pass --host explicitly to send load anywhere else"
            )
    return None
