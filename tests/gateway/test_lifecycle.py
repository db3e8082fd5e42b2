"""In-flight requests, work owed after an answer (settle_soon), and the drain at shutdown (gateway/lifecycle.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from gateway import lifecycle
from gateway.lifecycle import drain, request_track, settle_soon, settled


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    yield
    lifecycle._State.shutting_down = False  # drain() sets it for the rest of the process
    assert not lifecycle._settling, "a test left settle tasks behind"


async def test_settle_work_runs_after_the_current_task_yields() -> None:
    order: list[str] = []

    async def work() -> None:
        order.append("settled")

    settle_soon(work())
    order.append("answer sent")  # what the view and the server's send do before the task next yields
    assert order == ["answer sent"]
    await asyncio.sleep(0)
    assert order == ["answer sent", "settled"]


async def test_settled_waits_for_work_started_meanwhile() -> None:
    done: list[int] = []

    async def second() -> None:
        await asyncio.sleep(0.02)
        done.append(2)

    async def first() -> None:
        await asyncio.sleep(0.02)
        done.append(1)
        settle_soon(second())  # started while settled() waits for the first

    settle_soon(first())
    assert await settled(5) is True
    assert done == [1, 2]


async def test_settled_gives_up_at_its_timeout() -> None:
    release = asyncio.Event()
    task = settle_soon(release.wait())  # type: ignore[arg-type]
    assert await settled(0.05) is False
    assert not task.done()  # never cancelled: it would lose what it records
    release.set()
    assert await settled(5) is True


async def test_settle_work_survives_the_request_being_cancelled() -> None:
    recorded = asyncio.Event()

    async def bill() -> None:
        await asyncio.sleep(0.02)
        recorded.set()

    async def request() -> None:
        settle_soon(bill())
        await asyncio.sleep(10)  # the client leaves while the request still has work to do

    task = asyncio.create_task(request())
    await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(recorded.wait(), 5)


async def test_a_failure_after_the_answer_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("ledger unreachable")

    with caplog.at_level(logging.ERROR, logger="gateway.lifecycle"):
        settle_soon(broken())
        assert await settled(5) is True
    (record,) = [r for r in caplog.records if r.name == "gateway.lifecycle"]
    assert record.getMessage() == "work after an answer failed"
    assert record.exc_info is not None and "ledger unreachable" in str(record.exc_info[1])


async def test_drain_waits_for_the_billing_of_requests_that_end_during_it() -> None:
    billed: list[str] = []

    async def bill(name: str) -> None:
        await asyncio.sleep(0.05)
        billed.append(name)

    async def request(name: str, seconds: float) -> None:
        request_track()
        await asyncio.sleep(seconds)
        settle_soon(bill(name))  # as /v1/messages does once its answer is out

    tasks = [asyncio.create_task(request("quick", 0.01)), asyncio.create_task(request("slow", 0.1))]
    await asyncio.sleep(0)
    assert await drain(5) == (2, 0)
    assert sorted(billed) == ["quick", "slow"]
    assert all(task.done() for task in tasks)


async def test_drain_with_no_requests_still_waits_for_billing() -> None:
    billed = asyncio.Event()

    async def bill() -> None:
        await asyncio.sleep(0.05)
        billed.set()

    settle_soon(bill())
    assert await drain(5) == (0, 0)
    assert billed.is_set()


async def test_drain_says_when_billing_outlasts_it(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()
    settle_soon(release.wait())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="gateway.lifecycle"):
        assert await drain(5, cancel_wait=0.05) == (0, 0)
    assert "1 request(s) still being billed after 0 s" in caplog.text
    release.set()
    assert await settled(5) is True
