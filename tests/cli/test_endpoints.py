"""``shipyard endpoint``, ``shipyard deploy`` and ``shipyard traffic``."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard.client import Client

from .conftest import Invoke, as_json

MODEL = "churn"


@pytest.fixture
def versions(client: Client) -> list[int]:
    """Two versions of 'churn' (logistic regressions on iris), alias production -> 1."""
    features, labels = load_iris(return_X_y=True)
    found = []
    for iterations in (5, 10):
        model = LogisticRegression(max_iter=iterations).fit(features, labels)
        found.append(int(client.register_model(MODEL, model, training_data=features, onnx=False)["version"]))
    client.set_alias(MODEL, "production", found[0])
    return found


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_endpoint_create_list_get_and_delete(shipyard: Invoke, versions: list[int]) -> None:
    created = as_json(shipyard("endpoint", "create", "churn", "--allow", "sa:default/scorer", "--allow", "alice", "-o", "json"))
    assert (created["name"], created["current_revision"]) == ("churn", None)
    assert created["audience"] == {"namespace": True, "principals": ["alice", "sa:default/scorer"], "anonymous": False}
    closed = as_json(shipyard("endpoint", "create", "private", "--no-members", "--description", "internal", "-o", "json"))
    assert (closed["audience"]["namespace"], closed["description"]) == (False, "internal")
    assert "public" in shipyard("endpoint", "create", "public", "--anonymous").stdout
    assert as_json(shipyard("endpoint", "get", "public", "-o", "json"))["audience"]["anonymous"] is True

    assert [e["name"] for e in as_json(shipyard("endpoint", "list", "-o", "json"))] == ["churn", "private", "public"]
    table = shipyard("endpoint", "list").stdout
    assert all(name in table for name in ("churn", "private", "public"))
    assert "alice" in shipyard("endpoint", "get", "churn").stdout

    assert as_json(shipyard("endpoint", "delete", "churn", "-o", "json")) == {"deleted": "churn", "namespace": "default"}
    result = shipyard("endpoint", "get", "churn", code=1)
    assert "'churn' does not exist" in result.stderr
    assert [e["name"] for e in as_json(shipyard("endpoint", "list", "-o", "json"))] == ["private", "public"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_deploy_traffic_revisions_and_rollback(shipyard: Invoke, client: Client, versions: list[int]) -> None:
    # deploy creates the endpoint when it is missing, and follows an alias.
    first = as_json(shipyard("deploy", "churn", f"{MODEL}@production", "-o", "json"))
    assert (first["revision"], first["routes"]) == (1, [{"model": MODEL, "alias": "production", "weight": 100}])
    assert client.get_endpoint("churn")["current_revision"] == 1

    second = as_json(shipyard("deploy", "churn", f"{MODEL}:2", "--replicas", "3", "-o", "json"))
    assert (second["revision"], second["routes"]) == (2, [{"model": MODEL, "version": 2, "weight": 100}])
    assert (second["replicas_min"], second["replicas_max"]) == (3, 3)

    split = as_json(
        shipyard(
            "traffic", "churn", f"{MODEL}:1=90", f"{MODEL}@production=10",
            "--shadow", f"{MODEL}:2", "--sticky-header", "X-User", "-o", "json",
        )
    )  # fmt: skip
    assert split["revision"] == 3
    assert split["routes"] == [
        {"model": MODEL, "version": 1, "weight": 90},
        {"model": MODEL, "alias": "production", "weight": 10},
    ]
    assert (split["shadow"], split["sticky_header"], split["reason"]) == ({"model": MODEL, "version": 2}, "X-User", "traffic")
    assert (split["replicas_min"], split["replicas_max"]) == (3, 3)  # traffic keeps the replicas

    listed = as_json(shipyard("endpoint", "revisions", "churn", "-o", "json"))
    assert [r["revision"] for r in listed] == [1, 2, 3]
    assert [r["reason"] for r in listed] == ["deploy", "deploy", "traffic"]
    table = shipyard("endpoint", "revisions", "churn").stdout
    assert "churn@production=100" in table
    assert "churn:1=90" in table

    rolled = as_json(shipyard("endpoint", "rollback", "churn", "-o", "json"))
    assert (rolled["revision"], rolled["reason"], rolled["routes"]) == (4, "rollback", second["routes"])
    assert (rolled["shadow"], rolled["sticky_header"]) == (None, None)
    assert "churn:2=100" in shipyard("endpoint", "list").stdout
    assert "rollback" in shipyard("endpoint", "rollback", "churn").stdout


MALFORMED: list[tuple[str, ...]] = [
    ("traffic", "churn", "churn:1"),
    ("traffic", "churn", "churn:1=ninety"),
    ("traffic", "churn", "churn=100"),
    ("traffic", "churn", "churn:1=90", "churn:x=10"),
    ("traffic", "churn", "churn:1=100", "--shadow", "churn"),
    ("deploy", "churn", "churn"),
    ("deploy", "churn", "churn@Production"),
    ("deploy", "churn", "churn:1", "--replicas", "0"),
]


def test_malformed_model_references_are_usage_errors(shipyard: Invoke, client: Client) -> None:
    for args in MALFORMED:
        result = shipyard(*args, code=2)
        assert "Invalid value" in result.output, args
    # Refused before any call to the API: nothing was created.
    assert client.list_endpoints() == []


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_api_refusals_exit_1_with_the_message(shipyard: Invoke, versions: list[int]) -> None:
    shipyard("deploy", "churn", f"{MODEL}:1")
    result = shipyard("traffic", "churn", f"{MODEL}:1=90", f"{MODEL}:2=20", code=1)
    assert "route weights add up to 110: they must add up to 100" in result.stderr
    result = shipyard("traffic", "churn", f"{MODEL}:1=100", "--sticky-header", "X User", code=1)
    assert "sticky header" in result.stderr
    result = shipyard("deploy", "churn", f"{MODEL}:9", code=1)
    assert "no version 9" in result.stderr
    shipyard("endpoint", "create", "fresh")
    result = shipyard("endpoint", "rollback", "fresh", code=1)
    assert "no earlier revision" in result.stderr
    result = shipyard("traffic", "ghost", f"{MODEL}:1=100", code=1)
    assert "'ghost' does not exist" in result.stderr
    assert [r["revision"] for r in as_json(shipyard("endpoint", "revisions", "churn", "-o", "json"))] == [1]
