"""schemathesis against /openapi.json: no 5xx, and every response matches the schema.

(Business-rule refusals of schema-valid data — 422 for a missing tenant, say — are the
API's contract, so the "positive data is accepted" check is not among those run.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from api.app import Settings, create_app
from api.keys import create_key
from ledger.application import Ledger
from support.factories import ADMIN, reference_data

KEYS: dict[str, str] = {}


@pytest.fixture
def api_schema(ledger: Ledger, store_url: str) -> Iterator[object]:
    reference_data(ledger)
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=5)
    app = create_app(Settings(database_url=store_url), ledger=ledger)
    KEYS["admin"] = create_key(app.state.services.db, "admin")
    yield schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_within_its_schema_and_never_with_a_server_error(
    case: schemathesis.Case,
) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {KEYS['admin']}"},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            checks.response_headers_conformance,
        ],
    )
