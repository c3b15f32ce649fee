"""Locustfiles and load shapes for kubedrill.

Importing this package (or :mod:`loadtests.shapes`, :mod:`loadtests.schedule`,
:mod:`loadtests.recording`) never imports locust or gevent, so the engine and unit tests
can use the pure parts. :mod:`loadtests.plugin`, :mod:`loadtests.openmodel` and the
locustfiles (``reference.py``, ``kubedrill_record.py``) import locust and only ever run
inside Locust's own processes.
"""
