"""Lineage: from a model version back to the pipeline run, run, code, params, metrics and data."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.errors import NotFound
from shipyard.registry import aliases, models
from shipyard.store.models import Experiment, PipelineRun, Run
from shipyard.tracking import runs

MAX_PARENT_DEPTH = 20
PIPELINE_RUN_TAG = "shipyard.pipeline_run"  # set by the SDK inside a pipeline step
STEP_TAG = "shipyard.step"


def of_version(session: Session, caller: Caller, namespace: str, name: str, version: int) -> dict[str, Any]:
    model = models.get(session, caller, namespace, name)
    row = models.get_version(session, caller, namespace, name, version)
    lineage: dict[str, Any] = {
        "model": {
            "namespace": namespace,
            "name": model.name,
            "version": row.version,
            "uri": f"models:/{namespace}/{model.name}/{row.version}",
        },
        "artifact": {"digest": row.artifact_digest, "size": row.artifact_size, "format": row.format},
        "signature": row.signature,
        "metrics": row.metrics,
        "datasets": row.datasets,
        "code_version": row.code_version,
        "aliases": aliases.aliases_of_version(session, model.id, row.version),
        "created_at": row.created_at,
        "created_by": row.created_by,
        "run": None,
        "parent_runs": [],
        "pipeline_run": _pipeline_run(session, caller, row.tags),
    }
    if row.run_id is None:
        return lineage
    try:
        run = runs.get(session, caller, namespace, row.run_id)
    except NotFound:
        lineage["run"] = {"id": row.run_id, "missing": True}
        return lineage
    lineage["run"] = _run_summary(session, run)
    if lineage["pipeline_run"] is None:
        lineage["pipeline_run"] = _pipeline_run(session, caller, lineage["run"]["tags"])
    parent_id, depth = run.parent_run_id, 0
    while parent_id is not None and depth < MAX_PARENT_DEPTH:
        parent = session.get(Run, parent_id)
        if parent is None or parent.namespace != namespace:
            break
        lineage["parent_runs"].append({"id": parent.id, "name": parent.name, "status": parent.status})
        parent_id, depth = parent.parent_run_id, depth + 1
    return lineage


def _pipeline_run(session: Session, caller: Caller, tags: dict[str, Any]) -> dict[str, Any] | None:
    """The pipeline run (and step) that ``tags`` name, when the caller may see it."""
    run_id = tags.get(PIPELINE_RUN_TAG)
    found = session.get(PipelineRun, run_id) if isinstance(run_id, str) and 0 < len(run_id) <= 32 else None
    if found is None or not caller.can(Action.READ, found.namespace):
        return None
    return {"id": found.id, "pipeline": found.pipeline, "status": found.status, "step": tags.get(STEP_TAG)}


def _run_summary(session: Session, run: Run) -> dict[str, Any]:
    experiment = session.get(Experiment, run.experiment_id)
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "experiment": {"id": run.experiment_id, "name": experiment.name if experiment else ""},
        "start_time": run.start_time,
        "end_time": run.end_time,
        "code_version": run.code_version,
        "created_by": run.created_by,
        "params": runs.params_of(session, run.id),
        "metrics": {m.key: m.value for m in runs.latest_metrics_of(session, run.id)},
        "tags": runs.tags_of(session, run.id),
    }
