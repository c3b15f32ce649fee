"""Dynamic batching: the pure policy with a fake clock, and the batcher on a real loop."""

from __future__ import annotations

import asyncio
import math

import pytest

from kubedrill.refservice.batching import BatchDecision, DynamicBatcher, decide
from kubedrill.refservice.slots import QueueFull

MS = 0.001


@pytest.mark.parametrize(
    ("rows", "age", "expected"),
    [
        ([], 0.0, BatchDecision(0, math.inf)),
        ([1], 0.0, BatchDecision(0, 5 * MS)),  # wait for company up to the timeout
        ([1, 1], 3 * MS, BatchDecision(0, 2 * MS)),
        ([1, 1], 5 * MS, BatchDecision(2, 0.0)),  # oldest waited the timeout
        ([1, 1, 1, 1], 0.0, BatchDecision(4, 0.0)),  # full: runs at once
        ([1] * 6, 0.0, BatchDecision(4, 0.0)),  # the rest waits for the next batch
        ([3, 2], 0.0, BatchDecision(1, 0.0)),  # 3+2 > 4: the second does not fit
        ([9, 1], 0.0, BatchDecision(1, 0.0)),  # oversized request runs alone
        ([2, 1], 1 * MS, BatchDecision(0, 4 * MS)),
    ],
)
def test_decide(rows: list[int], age: float, expected: BatchDecision) -> None:
    got = decide(rows, age, max_batch=4, timeout_s=5 * MS)
    assert got.take == expected.take
    assert got.wait_s == pytest.approx(expected.wait_s)


def test_decide_with_zero_timeout_never_waits() -> None:
    assert decide([1], 0.0, max_batch=8, timeout_s=0.0) == BatchDecision(1, 0.0)


def test_decide_follows_a_fake_clock() -> None:
    """Requests arriving at 0, 2 and 4 ms with a 5 ms timeout run together at 5 ms."""
    arrivals = [0.0, 2 * MS, 4 * MS]
    now = 0.0
    while True:
        pending = [1 for t in arrivals if t <= now]
        d = decide(pending, now - arrivals[0], max_batch=8, timeout_s=5 * MS)
        if d.take:
            break
        next_arrival = min((t for t in arrivals if t > now), default=math.inf)
        now = min(now + d.wait_s, next_arrival)  # the loop wakes on a timeout or an arrival
    assert (d.take, now) == (3, pytest.approx(5 * MS))


def _batcher(sizes: list[int], **kw: float) -> DynamicBatcher[int, int]:
    async def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    return DynamicBatcher(
        run,
        max_batch=int(kw.get("max_batch", 4)),
        timeout_s=kw.get("timeout_s", 0.05),
        max_queue=int(kw.get("max_queue", 100)),
    )


def test_batcher_groups_concurrent_requests_and_keeps_order() -> None:
    async def main() -> None:
        sizes: list[int] = []
        b = _batcher(sizes)
        b.start()
        try:
            results = await asyncio.gather(*(b.submit(i) for i in range(6)))
        finally:
            await b.close()
        assert [out for out, _ in results] == [i * 10 for i in range(6)]
        assert sizes == [4, 2]
        assert [info.size for _, info in results] == [4, 4, 4, 4, 2, 2]
        assert all(info.run_s >= 0.009 for _, info in results)

    asyncio.run(main())


def test_batcher_lone_request_waits_for_the_timeout() -> None:
    async def main() -> None:
        sizes: list[int] = []
        b = _batcher(sizes, timeout_s=0.05)
        b.start()
        try:
            _, info = await b.submit(1)
        finally:
            await b.close()
        assert sizes == [1]
        assert 0.045 <= info.queued_s < 0.5

    asyncio.run(main())


def test_batcher_queue_limit_and_errors() -> None:
    async def main() -> None:
        async def boom(items: list[int]) -> list[int]:
            raise RuntimeError("device lost")

        b: DynamicBatcher[int, int] = DynamicBatcher(boom, max_batch=2, timeout_s=0.01, max_queue=1)
        b.start()
        try:
            tasks = [asyncio.ensure_future(b.submit(i)) for i in range(3)]
            await asyncio.sleep(0)
            with pytest.raises(QueueFull):
                await b.submit(99)  # 2 gathering + 1 queued: full
            for t in tasks:
                with pytest.raises(RuntimeError, match="device lost"):
                    await t
        finally:
            await b.close()

    asyncio.run(main())
