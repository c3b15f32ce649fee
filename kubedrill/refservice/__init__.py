"""kubedrill's reference GPU inference service.

Run it with ``python -m kubedrill.refservice --mode emulated|torch``; see
docs/reference-service.md. Importing this package imports neither aiohttp nor torch:
the server lives in :mod:`kubedrill.refservice.server`, the test launcher in
:mod:`kubedrill.refservice.testing`, and torch is imported only when torch mode loads.
"""

__all__: list[str] = []
