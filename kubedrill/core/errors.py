"""Errors that say what they mean; the CLI maps them to exit codes."""

from __future__ import annotations

__all__ = [
    "ActionFailed",
    "ConfigError",
    "KubedrillError",
    "PreconditionUnmet",
    "ThresholdSyntaxError",
]

_MAX_DETAIL = 300


def truncate(text: str, limit: int = _MAX_DETAIL) -> str:
    """Shorten an API payload or message so errors stay one readable line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class KubedrillError(Exception):
    """Base of every error kubedrill raises on purpose."""


class ConfigError(KubedrillError):
    """Bad user input: a config file, an option, an environment variable (exit 2).

    ``source`` names the file, flag or variable; ``key`` the dotted key inside it;
    ``expected`` what would have been accepted.
    """

    def __init__(self, source: str, key: str, expected: str, got: object = None) -> None:
        self.source = source
        self.key = key
        self.expected = expected
        self.got = got
        where = f"{source}: {key}" if key else source
        got_part = "" if got is None else f" (got {truncate(repr(got), 80)})"
        super().__init__(f"{where}: expected {expected}{got_part}")


class ThresholdSyntaxError(KubedrillError, ValueError):
    """A threshold expression such as ``p95_ms <= 100`` could not be parsed."""


class PreconditionUnmet(KubedrillError):
    """The environment cannot run a scenario (no cluster, no GPU): skip with a how-to-fix."""

    def __init__(self, what: str, how_to_fix: str) -> None:
        self.what = what
        self.how_to_fix = how_to_fix
        super().__init__(f"{what} — {how_to_fix}")


class ActionFailed(KubedrillError):
    """A load or chaos action could not do what it was asked to do."""
