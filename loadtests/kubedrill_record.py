"""Adds kubedrill's ``--kd-*`` options and HDR window recording to any locustfile::

    locust -f loadtests/kubedrill_record.py,my_locustfile.py --kd-spool /tmp/load.jsonl ...

Closed-model users of any class are recorded from Locust's own response times; users that
subclass :class:`loadtests.openmodel.OpenModelUser` also get the open model (``--kd-rate``).
A ``LoadTestShape`` in ``my_locustfile.py`` drives the user count as usual.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import loadtests  # noqa: F401
except ImportError:  # a plain checkout that is not installed: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtests import plugin

plugin.install()
