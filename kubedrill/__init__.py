"""kubedrill: prove that a GPU-backed Kubernetes service does what its runbook claims.

The public API is re-exported here, so scenarios never import a layer::

    from kubedrill import Drill, LoadRun, LoadSpec, Verdict, expect

Names are resolved on first use (PEP 562), so importing ``kubedrill`` (as the sandbox
and the reference service do, in their own processes) loads nothing else.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from kubedrill.checks import Check as Check
    from kubedrill.checks import CheckResult as CheckResult
    from kubedrill.checks import expect as expect
    from kubedrill.core.errors import ActionFailed as ActionFailed
    from kubedrill.core.errors import ConfigError as ConfigError
    from kubedrill.core.errors import PreconditionUnmet as PreconditionUnmet
    from kubedrill.core.settings import Settings as Settings
    from kubedrill.core.settings import load_settings as load_settings
    from kubedrill.core.types import Verdict as Verdict
    from kubedrill.core.types import Window as Window
    from kubedrill.load import LoadRun as LoadRun
    from kubedrill.load import LoadSpec as LoadSpec
    from kubedrill.run.drill import Drill as Drill
    from kubedrill.run.record import RunRecord as RunRecord
    from kubedrill.timeline import Timeline as Timeline

try:
    __version__ = version("kubedrill")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_EXPORTS = {
    "Drill": "kubedrill.run.drill",
    "RunRecord": "kubedrill.run.record",
    "LoadRun": "kubedrill.load",
    "LoadSpec": "kubedrill.load",
    "Check": "kubedrill.checks",
    "CheckResult": "kubedrill.checks",
    "expect": "kubedrill.checks",
    "Timeline": "kubedrill.timeline",
    "Verdict": "kubedrill.core.types",
    "Window": "kubedrill.core.types",
    "Settings": "kubedrill.core.settings",
    "load_settings": "kubedrill.core.settings",
    "ConfigError": "kubedrill.core.errors",
    "PreconditionUnmet": "kubedrill.core.errors",
    "ActionFailed": "kubedrill.core.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kubedrill' has no attribute {name!r}")
    return getattr(import_module(module), name)
