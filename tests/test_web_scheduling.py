"""The order a server process serves waiting requests in: earliest deadline first, where a
request's deadline is its arrival plus its kind's target (``web.scheduling``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from reachmeter.store import Store
from reachmeter.web.scheduling import BUDGETS, EarliestDeadlineFirst, budget_of
from tests.apidemo import demo_stores, make_app


def test_each_kind_of_request_has_its_budget() -> None:
    assert budget_of("/badge/doi/10.1234/abc.svg") == BUDGETS["badge"] == 0.020
    assert budget_of("/static/app.css") == BUDGETS["static"] == 0.020
    assert budget_of("/api/v1/outputs/7/score") == BUDGETS["api"] == 0.050
    assert budget_of("/outputs/7") == BUDGETS["page"] == 0.100
    assert budget_of("/") == BUDGETS["page"]


async def _served(
    scheduler: EarliestDeadlineFirst, arrivals: list[tuple[str, float, float]]
) -> list[str]:
    """The order in which requests (name, budget, arrival time on a stopped clock) that all
    wait at once are let go."""
    loop = asyncio.get_running_loop()
    clock = [0.0]
    loop.time = lambda: clock[0]  # type: ignore[method-assign]
    order: list[str] = []

    async def request(name: str, budget: float, arrival: float) -> None:
        clock[0] = arrival
        await scheduler.turn(budget)
        order.append(name)

    await asyncio.gather(*(request(*arrival) for arrival in arrivals))
    return order


def test_the_earliest_deadline_goes_first() -> None:
    arrivals = [("page", 0.100, 5.0), ("api", 0.050, 5.0), ("badge", 0.020, 5.0),
                ("second api", 0.050, 5.0)]  # fmt: skip
    order = asyncio.run(_served(EarliestDeadlineFirst(), arrivals))
    assert order == ["badge", "api", "second api", "page"]


def test_a_request_that_waited_long_enough_goes_before_newer_quick_ones() -> None:
    # The page's deadline (5.100) is earlier than the badge's (5.090 + 0.020).
    arrivals = [("badge", 0.020, 5.090), ("page", 0.100, 5.0), ("api", 0.050, 5.060)]
    order = asyncio.run(_served(EarliestDeadlineFirst(), arrivals))
    assert order == ["page", "badge", "api"]


def test_a_waiter_that_went_away_is_skipped() -> None:
    async def scenario() -> list[str]:
        scheduler = EarliestDeadlineFirst()
        order: list[str] = []

        async def request(name: str, budget: float) -> None:
            await scheduler.turn(budget)
            order.append(name)

        badge = asyncio.ensure_future(request("badge", 0.020))
        page = asyncio.ensure_future(request("page", 0.100))
        await asyncio.sleep(0)  # both wait now
        badge.cancel()
        await asyncio.gather(page, badge, return_exceptions=True)
        assert len(scheduler) == 0
        return order

    assert asyncio.run(scenario()) == ["page"]


def test_a_new_event_loop_starts_afresh() -> None:
    """An application served again (a new loop) is not held up by a waiter of the old one."""
    scheduler = EarliestDeadlineFirst()

    async def abandoned() -> None:
        task = asyncio.ensure_future(scheduler.turn(0.1))
        await asyncio.sleep(0)
        task.cancel()  # the loop ends with the scheduler still dispatching

    asyncio.run(abandoned())

    async def served() -> str:
        await asyncio.wait_for(scheduler.turn(0.02), timeout=5)
        return "served"

    assert asyncio.run(served()) == "served"


@pytest.fixture(scope="module", params=["sqlite"])
def demo(request: pytest.FixtureRequest) -> Iterator[Store]:
    yield from demo_stores(request)


def test_the_application_serves_waiting_requests_by_deadline(demo: Store) -> None:
    """Three requests arrive at once, the page first: the badge is served first, then the
    API read, then the page (on SQLite each is served whole in its turn)."""
    app = make_app(demo)

    async def scenario() -> list[str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            warm = await c.get("/api/v1/outputs?limit=1")
            output_id = warm.json()["items"][0]["id"]
            order: list[str] = []

            async def get(name: str, url: str) -> None:
                response = await c.get(url)
                assert response.status_code == 200, (url, response.text[:200])
                order.append(name)

            await asyncio.gather(
                get("page", f"/outputs/{output_id}"),
                get("api", f"/api/v1/outputs/{output_id}/score"),
                get("badge", f"/badge/output/{output_id}.svg"),
            )
            return order

    assert asyncio.run(scenario()) == ["badge", "api", "page"]
