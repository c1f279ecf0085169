"""The quickstart pipeline (examples/quickstart/pipeline.py): its checks, its lineage, its cache, and Ray.

Deployment is left out here (``deploy=False``); tests/cli/test_demo.py runs the demo,
which deploys through a real gateway and sends it traffic.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import pytest
from examples.quickstart import pipeline as qs
from sklearn.datasets import load_breast_cancer

import shipyard
from shipyard.client import Client
from shipyard.pipelines import materializers
from shipyard.pipelines.launcher import run_pipeline
from shipyard.pipelines.runner import RunResult

NS = "quickstart"
MODEL = "breast-cancer"
STEPS = {"ingest", "validate", "split", "train", "evaluate", "gate", "register"}
PARAMS = {"deploy": False}


def bundled() -> pd.DataFrame:
    return pd.read_csv(qs.resolve(qs.BUNDLED))


def output_digests(result: RunResult) -> dict[str, dict[str, str]]:
    return {step: {name: ref["digest"] for name, ref in o.outputs.items()} for step, o in result.steps.items()}


def registered_model_digest(client: Client, namespace: str, version: int) -> str:
    """The registered model's digest in the canonical form the pipeline stores models in.

    The registry keeps skops' own bytes, which hold object ids and zip timestamps, so the
    same model registered twice has two artifact digests; canonical bytes compare the models.
    """
    model = client.load_model(MODEL, version, namespace=namespace)
    data, _, _ = materializers.dump(model, "sklearn.skops")
    return hashlib.sha256(data).hexdigest()


# -- steps as plain functions ----------------------------------------------------------


def test_the_bundled_data_passes_validation_in_the_expected_shape() -> None:
    frame = qs.validate(qs.ingest(qs.BUNDLED, qs.file_digest(qs.BUNDLED)))
    assert list(frame.columns) == [*qs.FEATURES, qs.TARGET]
    source = load_breast_cancer(as_frame=True).frame
    assert (frame.to_numpy() == source.to_numpy()).all(), "the CSV holds scikit-learn's values exactly"
    assert frame[qs.TARGET].value_counts().to_dict() == {1: 357, 0: 212}
    assert (frame.dtypes[list(qs.FEATURES)] == "float64").all()


def test_validation_names_every_problem_at_once() -> None:
    frame = bundled().drop(columns=["mean_area"]).assign(notes="n/a")
    frame.loc[[3, 7], "mean_radius"] = None
    frame.loc[0, qs.TARGET] = 2
    with pytest.raises(shipyard.InvalidInput) as caught:
        qs.validate(frame)
    message = str(caught.value)
    assert message.startswith("the data set fails validation: ")
    assert "missing columns ['mean_area']" in message
    assert "unexpected columns ['notes']" in message
    assert "column 'mean_radius' has 2 missing values (rows [3, 7])" in message
    assert "column 'target' holds [0, 1, 2], expected only [0, 1]" in message


def test_validation_checks_types_labels_and_size() -> None:
    frame = bundled().head(50).astype({"mean_texture": str})
    frame[qs.TARGET] = 1
    with pytest.raises(shipyard.InvalidInput) as caught:
        qs.validate(frame)
    message = str(caught.value)
    assert "column 'mean_texture' is " in message  # object or str, as the pandas version has it
    assert "expected numbers" in message
    assert "column 'target' holds only [1], expected both of [0, 1]" in message
    assert "50 rows, expected at least 100" in message


def test_ingest_refuses_a_file_that_changed() -> None:
    with pytest.raises(shipyard.IntegrityFailure, match="the file changed after the run started"):
        qs.ingest(qs.BUNDLED, "0" * 64)


def test_the_gate_fails_below_the_threshold_and_passes_metrics_on() -> None:
    metrics: dict[str, Any] = {"accuracy": 0.91, "f1": 0.9}
    with pytest.raises(qs.QualityGateFailed, match=r"^accuracy 0\.91 is below the threshold 0\.95: the model is not"):
        qs.gate(metrics, threshold=0.95)
    assert qs.gate(metrics, threshold=0.9) == metrics
    with pytest.raises(shipyard.InvalidInput, match="no metric 'auc' to gate on"):
        qs.gate(metrics, metric="auc")


# -- on a platform -----------------------------------------------------------------------


def test_registers_with_lineage_gates_and_reruns_from_the_cache(client: Client) -> None:
    client.create_namespace(NS)
    first = run_pipeline(qs.quickstart, PARAMS, namespace=NS, client=client)
    assert first.status == "succeeded", first.error
    assert set(first.steps) == STEPS
    assert first.output("register") == {"model": MODEL, "version": 1}
    metrics = first.output("evaluate")
    assert metrics["test_rows"] == 143
    assert metrics["accuracy"] >= 0.95

    # The version traces back to the pipeline run and step, through the tracking run the step opened.
    version = client.get_model_version(MODEL, 1, namespace=NS)
    lineage = client.lineage(MODEL, 1, namespace=NS)
    expected_run = {"id": first.run_id, "pipeline": "quickstart", "status": "succeeded", "step": "register"}
    assert lineage["pipeline_run"] == expected_run
    run = lineage["run"]
    assert run["tags"]["shipyard.pipeline_run"] == first.run_id
    assert run["experiment"]["name"] == "quickstart"
    assert {"c", "seed", "test_share", "estimator"} <= set(run["params"])
    assert run["metrics"] == version["metrics"] == {k: metrics[k] for k in ("accuracy", "f1", "roc_auc")}
    assert lineage["datasets"][0]["rows"] == 426
    assert version["signature"]["inputs"]["type"] == "columns"
    assert [c["name"] for c in version["signature"]["inputs"]["columns"]] == list(qs.FEATURES)
    assert version["onnx_digest"], "served through its ONNX export"
    # ... and the registered model is the one the train step made.
    assert registered_model_digest(client, NS, 1) == first.steps["train"].outputs["output"]["digest"]

    again = run_pipeline(qs.quickstart, PARAMS, namespace=NS, client=client)
    assert again.status == "succeeded", again.error
    assert {name: o.status for name, o in again.steps.items()} == dict.fromkeys(STEPS, "cached")
    assert output_digests(again) == output_digests(first)
    assert [v["version"] for v in client.list_model_versions(MODEL, namespace=NS)] == [1], "no second registration"

    # A bar the model does not clear stops the run at the gate: nothing new is registered.
    bar = round(metrics["accuracy"] + 0.005, 3)
    gated = run_pipeline(qs.quickstart, {**PARAMS, "threshold": bar}, namespace=NS, client=client)
    assert gated.status == "failed"
    assert f"QualityGateFailed: accuracy {metrics['accuracy']:.4g} is below the threshold {bar:g}" in (gated.error or "")
    assert "shipyard pipeline resume" in (gated.error or "")
    assert gated.steps["gate"].status == "failed"
    assert "register" not in gated.steps
    assert [v["version"] for v in client.list_model_versions(MODEL, namespace=NS)] == [1]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_executor")
def test_local_and_ray_give_identical_results(client: Client) -> None:
    """The same parameters in two namespaces, one per executor, with the cache off: both run every step."""
    results = {}
    for executor in ("local", "ray"):
        namespace = f"on-{executor}"
        client.create_namespace(namespace)
        results[executor] = run_pipeline(
            qs.quickstart, PARAMS, namespace=namespace, executor=executor, client=client, cache=False
        )
    local, on_ray = results["local"], results["ray"]
    assert local.status == "succeeded", local.error
    assert on_ray.status == "succeeded", on_ray.error
    assert client.get_pipeline_run(on_ray.run_id, namespace="on-ray")["executor"] == "ray"
    assert {o.status for o in [*local.steps.values(), *on_ray.steps.values()]} == {"succeeded"}

    assert output_digests(on_ray) == output_digests(local)
    assert set(output_digests(local)) == STEPS
    assert on_ray.output("evaluate") == local.output("evaluate")

    versions = {ns: client.get_model_version(MODEL, 1, namespace=ns) for ns in ("on-local", "on-ray")}
    assert registered_model_digest(client, "on-ray", 1) == registered_model_digest(client, "on-local", 1)
    assert registered_model_digest(client, "on-ray", 1) == on_ray.steps["train"].outputs["output"]["digest"]
    for field in ("signature", "metrics", "datasets", "format"):
        assert versions["on-ray"][field] == versions["on-local"][field], field
    assert client.lineage(MODEL, 1, namespace="on-ray")["pipeline_run"]["id"] == on_ray.run_id
