"""kubedrill: prove that a GPU-backed Kubernetes service does what its runbook claims."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kubedrill")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
