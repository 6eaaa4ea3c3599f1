"""Schema-driven fuzzing: schemathesis generates valid and invalid requests for every operation
in the API's own ``/openapi.json`` and sends them, authenticated, to a real cluster.

Pass = no 5xx, and every answer matches what the schema promises for it (documented status,
content type and body schema). ``make test`` runs a bounded, derandomized pass
(``FUZZ_EXAMPLES`` per operation and mode); ``make fuzz`` sets ``MINIDROPBOX_FUZZ_EXAMPLES``
to 1000.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from minidropbox.api.app import create_app
from minidropbox.settings import Settings
from tests.conftest import PASSWORD, bearer, signup_and_login
from tests.harness import TestCluster

EXAMPLES = int(os.environ.get("MINIDROPBOX_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
USER = "fuzzer"
# What the server answers a request its HTTP parser cannot read (a header without a valid
# name or value, say): the same for every path, so no operation documents it.
UNPARSABLE = json.dumps({"error": {"code": "invalid_input",
                                   "message": "Invalid HTTP request received."}}).encode()


@pytest.fixture(scope="module")
def fuzz_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    # Its own cluster: the fuzzer fails logins and floods requests by design, so throttles
    # are out of its way here (they are tested in test_login and test_limits).
    c = TestCluster(tmp_path_factory.mktemp("fuzz"), nodes=1, replicas=1, env={
        "requests_per_minute": 10**7, "login_failures_per_user": 10**7,
        "login_failures_per_address": 10**7, "head_timeout": 30, "body_window": 30})
    with httpx.Client(base_url=c.url, timeout=30) as client:
        signup_and_login(client, USER)
    try:
        yield c
    finally:
        c.stop()


def _openapi() -> dict[str, Any]:
    """The API's schema, built in-process at collection time so pytest can list one test per
    operation (``test_fuzzed_schema_is_the_served_one`` checks it matches the running API)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp), jwt_secret="j" * 32,
                                  cluster_secret="c" * 32))
        try:
            return app.openapi()
        finally:
            app.state.ctx.db.dispose()


SPEC = _openapi()
schema = schemathesis.openapi.from_dict(SPEC)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=EXAMPLES, deterministic=True)


def test_fuzzed_schema_is_the_served_one(fuzz_cluster: TestCluster) -> None:
    served = httpx.get(fuzz_cluster.url + "/openapi.json").json()
    assert served == json.loads(json.dumps(SPEC))


def _fresh_token(url: str) -> dict[str, str]:
    # A session of its own per request, so a fuzzed logout or password change cannot end the
    # session the other operations use.
    r = httpx.post(url + "/api/v1/auth/login", json={"username": USER, "password": PASSWORD},
                   timeout=30)
    assert r.status_code == 200, r.text
    return bearer(r.json())


@pytest.fixture(scope="module")
def shared_auth(fuzz_cluster: TestCluster) -> dict[str, str]:
    return _fresh_token(fuzz_cluster.url)


@schema.parametrize()
def test_api_survives_fuzzing(case: Any, fuzz_cluster: TestCluster,
                              shared_auth: dict[str, str]) -> None:
    auth = shared_auth
    if case.path.startswith("/api/v1/auth/") and case.method in ("POST",):
        auth = _fresh_token(fuzz_cluster.url)
    headers = {**auth, **(case.headers or {})}
    response = case.call(base_url=fuzz_cluster.url, headers=headers, timeout=60)
    if response.status_code == 400 and response.content == UNPARSABLE:
        return  # refused by the HTTP parser before any operation saw it: no operation's answer
    case.validate_response(response, checks=CHECKS)
