"""The open model: requests sent at intended times, latency charged from those times.

Subclass :class:`OpenModelUser`, implement :meth:`~OpenModelUser.send` (one request), and
the same class runs both models:

* ``--kd-rate 0`` (default): Locust's user-count (closed) model; each user calls
  ``send()`` in a loop, paced by ``--kd-user-rps`` when given.
* ``--kd-rate R``: the open model. In each worker process one user becomes the
  scheduling greenlet: it computes this worker's share of the intended send times from
  the rate shape (:func:`loadtests.schedule.arrival_times`), sleeps until each, and spawns
  one greenlet per request into a pool bounded by ``--kd-max-inflight``. A send due
  while the pool is full is counted as *dropped* (never silently skipped). The request
  greenlet carries its intended time, and the plugin's request listener records the
  latency as completion - intended time, so a server stall is charged to every request
  it delayed (coordinated omission corrected), including the ones still waiting to be
  sent while the scheduler was behind.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from typing import Any

import gevent
from gevent.pool import Pool
from locust import task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.exception import StopUser
from locust.user.wait_time import constant_throughput

from loadtests import plugin
from loadtests.schedule import arrival_times

__all__ = ["OpenModelUser"]

log = logging.getLogger("kubedrill.load")
YIELD_EVERY = 64  # when behind schedule, let responses run at least this often


class OpenModelUser(FastHttpUser):
    """A FastHttpUser that runs the open model when ``--kd-rate`` is set."""

    abstract = True
    #: Name under which intended and dropped sends are counted: the ``name`` of the
    #: request ``send()`` makes (default: the class name).
    endpoint: str = ""

    def __init__(self, environment: Environment) -> None:
        opts = plugin.options(environment)
        self.kd = opts
        if opts.open_model:
            self.concurrency = opts.max_inflight
        self.network_timeout = opts.timeout
        self.connection_timeout = opts.timeout
        self._pacing = constant_throughput(opts.user_rps) if opts.user_rps > 0 else None
        super().__init__(environment)

    # ------------------------------------------------------------ to override
    def send(self) -> None:
        """Make one request with ``self.client`` (one iteration of the load)."""
        raise NotImplementedError

    def rate(self, elapsed: float) -> float:
        """Run-wide arrival rate at ``elapsed`` seconds; default: the ``--kd-shape``."""
        return self.kd.shape.rate(elapsed) if self.kd.shape is not None else 0.0

    # ------------------------------------------------------------------ Locust
    def wait_time(self) -> float:
        return float(self._pacing(self)) if self._pacing is not None else 0.0

    @task
    def iteration(self) -> None:
        if not self.kd.open_model:
            self.send()
            return
        st = plugin.state(self.environment)
        if st.scheduler_claimed:
            raise StopUser()  # one scheduling greenlet per worker process
        st.scheduler_claimed = True
        try:
            self._schedule()
        finally:
            plugin.finish(self.environment)
        gevent.sleep(self.kd.timeout + 5.0)  # the runner is quitting; wait to be stopped

    # -------------------------------------------------------------- open model
    def _schedule(self) -> None:
        opts = self.kd
        st = plugin.state(self.environment)
        rec = st.recorder
        assert rec is not None
        endpoint = self.endpoint or type(self).__name__
        worker, workers = plugin.worker_share(self.environment)
        pool = Pool(opts.max_inflight)
        times = arrival_times(
            self.rate, opts.duration, worker=worker, workers=workers, max_count=opts.max_requests
        )
        t0 = time.monotonic()
        end = t0 + opts.duration
        late = 0
        try:
            nxt = next(times, None)
            while nxt is not None:
                due = t0 + nxt
                delay = due - time.monotonic()
                if delay > 0:
                    gevent.sleep(delay)
                    late = 0
                else:
                    late += 1
                    if late % YIELD_EVERY == 0:
                        gevent.sleep(0)
                if pool.full():
                    rec.dropped(endpoint, due)
                    # Wait for a slot; every send due meanwhile also found the cap reached.
                    pool.wait_available(timeout=max(0.0, end - time.monotonic()))
                    now = time.monotonic()
                    nxt = next(times, None)
                    while nxt is not None and t0 + nxt <= now:
                        rec.dropped(endpoint, t0 + nxt)
                        nxt = next(times, None)
                    continue
                rec.intended(endpoint, due)
                pool.spawn(self._one, due, endpoint)
                nxt = next(times, None)
            pool.join(timeout=opts.timeout + 1.0)
        finally:
            pool.kill(block=False)

    def _one(self, due: float, endpoint: str) -> None:
        g: Any = gevent.getcurrent()
        g.kd_intended = due
        try:
            self.send()
        except (StopUser, gevent.GreenletExit):
            raise
        except Exception as e:  # noqa: BLE001 - a locustfile bug fails the request, not the run
            self.environment.events.user_error.fire(
                user_instance=self, exception=e, tb=sys.exc_info()[2]
            )
            log.debug("kubedrill: send() raised\n%s", traceback.format_exc())
            if g.kd_intended is not None:  # it failed before any request was recorded
                rec = plugin.state(self.environment).recorder
                if rec is not None:
                    rec.record(endpoint, time.monotonic() - due, "exception", intended=due)
                    g.kd_intended = None
        finally:
            if g.kd_intended is not None:  # send() made no request at all
                rec = plugin.state(self.environment).recorder
                if rec is not None:
                    rec.settle(endpoint, due)
            g.kd_intended = None
