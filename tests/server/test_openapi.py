"""The server's OpenAPI spec, served at /openapi.json, checked with schemathesis: generated
requests (valid and malformed) against a live server on loopback never get a 5xx, and what the
spec promises (content types, response schemas) holds. That includes starts from generated
images and grading of generated tasks: each must end in a 4xx, never a 5xx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from swebox.server.app import Server
from swebox.server.keys import KeyStore
from tests.conftest import _require, my_containers, serve_in_thread

KEY: list[str] = []


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    _require("docker")
    keys = KeyStore(Path(tmp_path_factory.mktemp("keys")) / "keys.json")
    KEY.append(keys.add("fuzz"))
    url, stop = serve_in_thread(Server(keys, name=f"fuzz-{os.getpid()}"))
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    yield schema
    stop()
    assert my_containers() == []


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_the_spec_holds(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"X-API-Key": KEY[0]},
                           checks=[not_a_server_error, content_type_conformance,
                                   response_schema_conformance])
