"""The API against its own OpenAPI description: schemathesis generates requests for every
operation (in process, no server) and no request may end in a server error (5xx)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from reachmeter.web.app import create_app
from tests.apidemo import demo_stores, make_app

# The description does not depend on the data: it is read from an application without a
# store, and the requests go to the application serving the demo.
DESCRIPTION = create_app(None).openapi()  # type: ignore[arg-type]
schema = schemathesis.openapi.from_dict(DESCRIPTION).include(path_regex=r"^/(api/v1|badge)/")


@pytest.fixture(scope="module", params=["sqlite"])
def demo_app(request: pytest.FixtureRequest) -> Iterator[FastAPI]:
    for store in demo_stores(request):
        yield make_app(store)


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_request_ends_in_a_server_error(case: Any, demo_app: FastAPI) -> None:
    case.call_and_validate(app=demo_app, checks=[not_a_server_error])
