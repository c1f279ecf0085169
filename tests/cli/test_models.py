"""``shipyard models``, ``shipyard alias`` and ``shipyard rollback``."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.client import Client

from .conftest import Invoke, as_json

MODEL = "churn"


@pytest.fixture
def versions(client: Client) -> list[dict[str, object]]:
    """Two versions of 'churn', both from one tracked run, trained on a tiny data set."""
    features = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
    labels = np.array([0, 1, 0, 1])
    run = client.create_run("churn-training", name="baseline", code_version="abc1234")
    client.log_batch(run["id"], params={"C": "1.0"}, metrics=[{"key": "acc", "value": 0.75, "step": 0}])
    model = LogisticRegression().fit(features, labels)
    return [client.register_model(MODEL, model, run_id=run["id"], training_data=features) for _ in range(2)]


def test_models_list_get_and_versions(shipyard: Invoke, versions: list[dict[str, object]]) -> None:
    assert [m["name"] for m in as_json(shipyard("models", "list", "-o", "json"))] == [MODEL]
    assert MODEL in shipyard("models", "list").stdout

    model = as_json(shipyard("models", "get", MODEL, "-o", "json"))
    assert (model["name"], model["latest_version"]) == (MODEL, 2)

    listed = as_json(shipyard("models", "versions", MODEL, "-o", "json"))
    assert sorted(v["version"] for v in listed) == [1, 2]
    assert "sklearn" in shipyard("models", "versions", MODEL).stdout


def test_an_unknown_model_exits_1_with_the_message(shipyard: Invoke) -> None:
    result = shipyard("models", "get", "no-such-model", code=1)
    assert "no-such-model" in result.stderr
    assert "Error" in result.stderr


def test_lineage_as_a_tree_and_as_json(shipyard: Invoke, versions: list[dict[str, object]]) -> None:
    run_id = versions[0]["run_id"]
    tree = shipyard("models", "lineage", MODEL, "1").stdout
    for expected in (f"{MODEL} v1", f"run {run_id}", "code version: abc1234", "C = 1.0", "acc = 0.75", "datasets", "training"):
        assert expected in tree

    lineage = as_json(shipyard("models", "lineage", MODEL, "1", "-o", "json"))
    assert lineage["run"]["id"] == run_id
    assert lineage["datasets"][0]["rows"] == 4
    shipyard("models", "lineage", MODEL, "9", code=1)


def test_aliases_set_list_history_delete(shipyard: Invoke, versions: list[dict[str, object]]) -> None:
    assert as_json(shipyard("alias", "set", MODEL, "staging", "1", "-o", "json"))["version"] == 1
    shipyard("alias", "set", MODEL, "staging", "2")

    aliases = as_json(shipyard("alias", "list", MODEL, "-o", "json"))
    assert [(a["alias"], a["version"]) for a in aliases] == [("staging", 2)]
    history = as_json(shipyard("alias", "history", MODEL, "staging", "-o", "json"))
    assert [(c["previous_version"], c["version"]) for c in history] == [(None, 1), (1, 2)]
    assert "staging" in shipyard("alias", "history", MODEL, "staging").stdout

    assert "Deleted alias staging" in shipyard("alias", "delete", MODEL, "staging").stdout
    assert as_json(shipyard("alias", "list", MODEL, "-o", "json")) == []
    shipyard("alias", "set", MODEL, "candidate", "1")
    assert as_json(shipyard("alias", "delete", MODEL, "candidate", "-o", "json")) == {"model": MODEL, "deleted": "candidate"}
    shipyard("alias", "delete", MODEL, "staging", code=1)


def test_rollback_says_from_which_version_to_which(shipyard: Invoke, versions: list[dict[str, object]]) -> None:
    shipyard("alias", "set", MODEL, "production", "1")
    shipyard("alias", "set", MODEL, "production", "2")
    assert "from v2 to v1" in shipyard("rollback", MODEL).stdout

    shipyard("alias", "set", MODEL, "canary", "2")
    shipyard("alias", "set", MODEL, "canary", "1")
    moved = as_json(shipyard("rollback", MODEL, "--alias", "canary", "-o", "json"))
    assert (moved["previous_version"], moved["version"]) == (1, 2)

    result = shipyard("rollback", MODEL, "--alias", "never-set", code=1)
    assert "never-set" in result.stderr
