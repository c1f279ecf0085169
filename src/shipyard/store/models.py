"""SQLAlchemy models: the metadata store's tables.

Times are integer milliseconds since the epoch and ids are opaque strings, so the same
rows can back the MLflow tracking REST API. Every record carries its namespace,
``created_at`` and ``created_by``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Namespace(Base):
    __tablename__ = "namespaces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))


class Principal(Base):
    """A user (namespace '') or a service account (owned by one namespace)."""

    __tablename__ = "principals"
    __table_args__ = (UniqueConstraint("kind", "namespace", "name", name="uq_principals_identity"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    namespace: Mapped[str] = mapped_column(String(63), default="")
    name: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    namespace: Mapped[str] = mapped_column(String(63), default="")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)


class RoleBinding(Base):
    """A role for a principal in one namespace, or ``platform-admin`` on ``*``."""

    __tablename__ = "role_bindings"
    __table_args__ = (UniqueConstraint("principal_id", "namespace", name="uq_role_bindings_principal_namespace"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"), index=True)
    namespace: Mapped[str] = mapped_column(String(63), index=True)
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_namespace_time", "namespace", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[int] = mapped_column(BigInteger, default=now_ms, index=True)
    principal: Mapped[str] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    namespace: Mapped[str] = mapped_column(String(63), default="")
    status_code: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    message: Mapped[str] = mapped_column(Text, default="")


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_experiments_namespace_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    namespace: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_experiment_start", "experiment_id", "start_time"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    namespace: Mapped[str] = mapped_column(String(63), index=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16), default="running")
    start_time: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    code_version: Mapped[str] = mapped_column(String(255), default="")
    parent_run_id: Mapped[str | None] = mapped_column(String(32))
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))


class Param(Base):
    __tablename__ = "params"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunTag(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_key_step", "run_id", "key", "step"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[float | None] = mapped_column(Float)  # NULL stands for NaN, which SQLite cannot store
    step: Mapped[int] = mapped_column(BigInteger, default=0)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class LatestMetric(Base):
    """The value at the highest step (then latest time) of each metric, for search."""

    __tablename__ = "latest_metrics"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)  # NULL stands for NaN
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class RunArtifact(Base):
    __tablename__ = "run_artifacts"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))


class NamespaceBlob(Base):
    """Which namespaces hold which blobs: a digest is usable only where its bytes were uploaded."""

    __tablename__ = "namespace_blobs"

    namespace: Mapped[str] = mapped_column(String(63), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))


class RegisteredModel(Base):
    __tablename__ = "registered_models"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_registered_models_namespace_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    namespace: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class ModelVersion(Base):
    """An immutable model version: everything needed to load it and trace it."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[int] = mapped_column(Integer)
    artifact_digest: Mapped[str] = mapped_column(String(64))
    artifact_size: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(32))
    # An ONNX export kept beside the main artifact, for fast serving; None when there is none.
    onnx_digest: Mapped[str | None] = mapped_column(String(64))
    onnx_size: Mapped[int | None] = mapped_column(BigInteger)
    # The reference profile of its training data (a JSON blob), so monitors need no raw data.
    profile_digest: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    datasets: Mapped[list[Any]] = mapped_column(default=list)
    code_version: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))


class ModelAlias(Base):
    __tablename__ = "model_aliases"

    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_by: Mapped[str] = mapped_column(String(255))


class AliasChange(Base):
    """Every move of an alias, so rollback knows where it was before."""

    __tablename__ = "alias_changes"
    __table_args__ = (Index("ix_alias_changes_model_alias", "model_id", "alias", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(63))
    version: Mapped[int | None] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    time: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    actor: Mapped[str] = mapped_column(String(255))


class Endpoint(Base):
    """A named serving endpoint in a namespace, and who may call it."""

    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_endpoints_namespace_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    namespace: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    current_revision: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class EndpointRevision(Base):
    """One immutable deployment of an endpoint: routes with weights, shadow, replicas."""

    __tablename__ = "endpoint_revisions"
    __table_args__ = (UniqueConstraint("endpoint_id", "revision", name="uq_endpoint_revisions_endpoint_revision"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    routes: Mapped[list[Any]] = mapped_column(default=list)
    shadow: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    replicas_min: Mapped[int] = mapped_column(Integer, default=1)
    replicas_max: Mapped[int] = mapped_column(Integer, default=1)
    sticky_header: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(32), default="deploy")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))


class PipelineRun(Base):
    """One run of a pipeline: its parameters, its graph as the runner saw it, and where it is."""

    __tablename__ = "pipeline_runs"
    __table_args__ = (
        Index("ix_pipeline_runs_namespace_created", "namespace", "created_at"),
        Index("ix_pipeline_runs_namespace_status", "namespace", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    namespace: Mapped[str] = mapped_column(String(63))
    pipeline: Mapped[str] = mapped_column(String(255))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    graph: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    executor: Mapped[str] = mapped_column(String(16), default="local")
    error: Mapped[str | None] = mapped_column(Text)
    resumed_from: Mapped[str | None] = mapped_column(String(32))
    resources: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What started it when no person did: "schedule/<name>/<fire id>".
    trigger: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[int | None] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)


class StepRun(Base):
    """One attempt of one step of a pipeline run: cache key, inputs and outputs by digest."""

    __tablename__ = "step_runs"
    __table_args__ = (
        UniqueConstraint("pipeline_run_id", "step", "attempt", name="uq_step_runs_run_step_attempt"),
        Index("ix_step_runs_namespace_cache_key", "namespace", "cache_key"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    pipeline_run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(63))
    step: Mapped[str] = mapped_column(String(255))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    cache_key: Mapped[str | None] = mapped_column(String(255))
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    cached_from: Mapped[str | None] = mapped_column(String(32))
    executor: Mapped[str] = mapped_column(String(16), default="local")
    resources: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What the attempt used, measured with psutil: {"cpu_seconds", "max_rss_mb"}.
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[int | None] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))


class StepLog(Base):
    """One structured log line of a pipeline run (a step's, or the runner's own with step '')."""

    __tablename__ = "step_logs"
    __table_args__ = (Index("ix_step_logs_run_id", "pipeline_run_id", "id"),)

    # An increasing integer, so that readers page with ``after=<last id>``.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    pipeline_run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(255), default="")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    ts: Mapped[int] = mapped_column(BigInteger)
    level: Mapped[str] = mapped_column(String(32), default="INFO")
    message: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class NamespaceQuota(Base):
    """What a namespace's pipeline runs may hold at once; a limit left empty is no limit."""

    __tablename__ = "namespace_quotas"

    namespace: Mapped[str] = mapped_column(String(63), primary_key=True)
    cpu: Mapped[float | None] = mapped_column(Float)
    memory_mb: Mapped[int | None] = mapped_column(BigInteger)
    gpu: Mapped[float | None] = mapped_column(Float)
    concurrent_runs: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_by: Mapped[str] = mapped_column(String(255))


class PlatformEvent(Base):
    """Something that happened and that triggers may react to: a run finished, a dataset version, an alert."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_namespace_kind", "namespace", "kind", "id"),)

    # An increasing integer: the scheduler keeps, per schedule, the last one it has seen.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(63))
    subject: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))


class Schedule(Base):
    """Run a pipeline on a cron expression, on matching events, or both."""

    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_schedules_namespace_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    pipeline: Mapped[str] = mapped_column(String(1024))  # MODULE:NAME or FILE.py:NAME
    workdir: Mapped[str | None] = mapped_column(Text)  # where the pipeline imports from
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    executor: Mapped[str] = mapped_column(String(16), default="local")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    cron: Mapped[str | None] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(63), default="UTC")
    on_event: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {"kind", "subject"[, "status"]}
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_due_at: Mapped[int | None] = mapped_column(BigInteger)
    event_cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    run_as: Mapped[str] = mapped_column(String(32))  # the principal whose rights its runs get
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class ScheduleFire(Base):
    """One firing of a schedule. The unique key makes a due time or an event fire at most once."""

    __tablename__ = "schedule_fires"
    __table_args__ = (
        UniqueConstraint("schedule_id", "fire_key", name="uq_schedule_fires_schedule_key"),
        Index("ix_schedule_fires_namespace_created", "namespace", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(63))
    fire_key: Mapped[str] = mapped_column(String(255))  # "cron:<due ms>" or "event:<event id>"
    due_at: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="launching")
    pipeline_run_id: Mapped[str | None] = mapped_column(String(32))
    pid: Mapped[int | None] = mapped_column(Integer)
    token_id: Mapped[str | None] = mapped_column(String(32))  # the run's own token, revoked when it ends
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Monitor(Base):
    """What to watch on an endpoint: features, window, drift tests and thresholds, quality checks."""

    __tablename__ = "monitors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    namespace: Mapped[str] = mapped_column(String(63), index=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_checked_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class MonitorCheck(Base):
    """One evaluation of a monitor over a window of the prediction log."""

    __tablename__ = "monitor_checks"
    __table_args__ = (Index("ix_monitor_checks_monitor_id", "monitor_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    monitor_id: Mapped[str] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(63))
    window_start: Mapped[int | None] = mapped_column(BigInteger)
    window_end: Mapped[int | None] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    drifted: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Feedback(Base):
    """Ground truth for one logged request; a later label for the same request replaces it."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "request_id", name="uq_feedback_endpoint_request"),
        Index("ix_feedback_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(63))
    request_id: Mapped[str] = mapped_column(String(128))
    label: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))


class AlertRule(Base):
    """A condition on an endpoint's measures, and where it stands (inactive, pending, firing)."""

    __tablename__ = "alert_rules"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_alert_rules_namespace_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    measure: Mapped[str] = mapped_column(String(255))  # e.g. "drift.share", "drift.feature:age", "latency.p99_ms"
    operator: Mapped[str] = mapped_column(String(2))  # ">", ">=", "<", "<="
    threshold: Mapped[float] = mapped_column(Float)
    for_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # how long it must hold before firing
    webhook: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default="inactive")
    state_since: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    last_value: Mapped[float | None] = mapped_column(Float)
    last_evaluated_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class AlertTransition(Base):
    """Every change of an alert rule's state, with the value that caused it."""

    __tablename__ = "alert_transitions"
    __table_args__ = (
        Index("ix_alert_transitions_rule_id", "rule_id", "id"),
        Index("ix_alert_transitions_namespace_at", "namespace", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(63))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notified: Mapped[str | None] = mapped_column(Text)  # webhook outcome, when there is a webhook
    at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class RetrainingLoop(Base):
    """The closed loop of one endpoint: which model's new versions are candidates, the gate, the canary."""

    __tablename__ = "retraining_loops"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    namespace: Mapped[str] = mapped_column(String(63), index=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The newest version of the model the loop has looked at; later ones are candidates.
    seen_version: Mapped[int] = mapped_column(Integer, default=0)
    run_as: Mapped[str] = mapped_column(String(32))  # the principal whose rights the loop acts with
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class LoopCycle(Base):
    """One candidate's way through the loop: gate, canary, then promoted, rolled back or rejected."""

    __tablename__ = "loop_cycles"
    __table_args__ = (Index("ix_loop_cycles_loop_id", "loop_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    loop_id: Mapped[str] = mapped_column(ForeignKey("retraining_loops.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(63))
    model: Mapped[str] = mapped_column(String(255))
    candidate_version: Mapped[int] = mapped_column(Integer)
    baseline_version: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # gating, canary, promoted, rolled_back, rejected, failed
    reason: Mapped[str] = mapped_column(Text, default="")
    canary_revision: Mapped[int | None] = mapped_column(Integer)
    canary_since: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)  # gate and soak measurements, transitions
    started_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
