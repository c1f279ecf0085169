"""Property-based fuzzing of the REST API from its own OpenAPI document: no input gives a 5xx."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from shipyard.runtime import Platform
from shipyard.server.app import create_app
from shipyard.settings import Settings

pytestmark = pytest.mark.slow

MODEL_BYTES = b"fuzz model bytes"
EXAMPLES_PER_VARIANT = 25


@pytest.fixture(scope="module")
def fuzz_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SHIPYARD_MAX_REQUEST_BYTES", raising=False)
        env.delenv("SHIPYARD_MAX_ARTIFACT_BYTES", raising=False)
        platform = Platform.open(Settings(home=root / "home", database_url=f"sqlite:///{root / 'fuzz.db'}"))
    platform.ensure_admin()
    yield platform
    platform.close()


@pytest.fixture(scope="module")
def admin_headers(fuzz_platform: Platform) -> dict[str, str]:
    token = fuzz_platform.settings.admin_token_path.read_text().strip()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def seeded(fuzz_platform: Platform, admin_headers: dict[str, str]) -> dict[str, Any]:
    """Real records, so that some generated requests reach past the lookups."""
    with TestClient(create_app(fuzz_platform), headers=admin_headers) as api:
        ns = "fuzz"
        assert api.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
        experiment = api.post(f"/api/v1/namespaces/{ns}/experiments", json={"name": "fuzzing"}).json()
        run = api.post(f"/api/v1/namespaces/{ns}/runs", json={"experiment_id": experiment["id"]}).json()
        logged = api.post(
            f"/api/v1/namespaces/{ns}/runs/{run['id']}/log-batch",
            json={"metrics": [{"key": "loss", "value": 0.5}], "params": {"lr": "0.1"}, "tags": {"team": "x"}},
        )
        assert logged.status_code == 204
        put = api.put(f"/api/v1/namespaces/{ns}/runs/{run['id']}/artifacts/model/file.bin", content=MODEL_BYTES)
        assert put.status_code == 201
        blob = api.put(f"/api/v1/namespaces/{ns}/blobs", content=MODEL_BYTES).json()
        assert blob["digest"] == hashlib.sha256(MODEL_BYTES).hexdigest()
        assert api.post(f"/api/v1/namespaces/{ns}/models", json={"name": "fuzzed"}).status_code == 201
        for _ in range(2):
            version = api.post(
                f"/api/v1/namespaces/{ns}/models/fuzzed/versions",
                json={"artifact_digest": blob["digest"], "format": "onnx", "run_id": run["id"]},
            )
            assert version.status_code == 201
        assert api.put(f"/api/v1/namespaces/{ns}/models/fuzzed/aliases/production", json={"version": 1}).status_code == 200
        assert api.put(f"/api/v1/namespaces/{ns}/models/fuzzed/aliases/production", json={"version": 2}).status_code == 200
    return {
        "namespace": ns,
        "experiment_id": experiment["id"],
        "run_id": run["id"],
        "name": "fuzzed",
        "version": 1,
        "alias": "production",
        "key": "loss",
        "path": "model/file.bin",
    }


@pytest.fixture(scope="module")
def api_schema(fuzz_platform: Platform, admin_headers: dict[str, str]) -> Any:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzz_platform), headers=admin_headers)
    # The admin's token is sent with every request: spend the examples on the inputs, not on the header.
    schema.config.generation.update(with_security_parameters=False)
    return schema


def _variants(operation: Any, seeded: dict[str, Any]) -> list[tuple[str, st.SearchStrategy[schemathesis.Case]]]:
    """Valid and invalid requests, with generated path parameters and with the seeded records' ones.

    Valid and invalid ones are drawn from one strategy: some operations have no input that
    can be made invalid, and a strategy of invalid requests alone would be unsatisfiable.
    """
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    variants = [("generated", st.one_of([operation.as_strategy(mode) for mode in modes]))]
    known = {name: seeded[name] for name in _path_parameter_names(operation) if name in seeded}
    if known:
        variants.append(("seeded", st.one_of([operation.as_strategy(mode, path_parameters=known) for mode in modes])))
    return variants


def _path_parameter_names(operation: Any) -> set[str]:
    return {parameter.name for parameter in operation.path_parameters}


def test_no_generated_request_gets_a_server_error(api_schema: Any, seeded: dict[str, Any], admin_headers: dict[str, str]) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 30, "the OpenAPI document lost operations"
    for operation in operations:
        for variant, strategy in _variants(operation, seeded):

            @settings(
                max_examples=EXAMPLES_PER_VARIANT,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def exercise(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=admin_headers, checks=[not_a_server_error])

            try:
                exercise()
            except Exception as exc:  # collect every operation's failure, then report them together
                failures.append(f"{operation.label} ({variant}): {exc}")
    assert not failures, "server errors:\n" + "\n\n".join(failures)
