"""Request and response bodies of the REST API (pydantic), published in the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Base64Bytes, BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs this one on Python 3.11

Scope = Literal["read", "write", "promote", "admin"]
TokenScope = Annotated[
    str,
    Field(
        pattern=r"^(read|write|promote|admin|invoke:[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$",
        description="read, write, promote, admin, or invoke:<endpoint> to call one serving endpoint",
    ),
]
RoleName = Literal["viewer", "editor", "operator", "admin", "platform-admin"]
RunStatus = Literal["running", "finished", "failed", "killed", "scheduled"]
MAX_INT64 = 2**63 - 1


class Body(BaseModel):
    """Request bodies reject unknown fields, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Health(Out):
    status: str
    version: str


class NamespaceIn(Body):
    name: str = Field(min_length=1, max_length=63, examples=["team-a"])
    description: str = Field(default="", max_length=10_000)
    labels: dict[str, str] = Field(default_factory=dict)


class NamespaceOut(Out):
    id: str
    name: str
    description: str
    labels: dict[str, Any]
    created_at: int
    created_by: str


class UserIn(Body):
    name: str = Field(min_length=1, max_length=255, examples=["alice"])
    display_name: str = Field(default="", max_length=255)


class ServiceAccountIn(Body):
    name: str = Field(min_length=1, max_length=255, examples=["trainer"])
    display_name: str = Field(default="", max_length=255)


class PrincipalOut(Out):
    id: str
    kind: str
    namespace: str
    name: str
    display_name: str
    disabled: bool
    created_at: int
    created_by: str


class PrincipalPatch(Body):
    disabled: bool


class WhoAmI(Out):
    name: str
    kind: str
    roles: dict[str, str]
    scopes: list[str]
    token_namespace: str


class TokenIn(Body):
    user: str | None = Field(default=None, description="User to issue for; default: the caller.")
    service_account: str | None = Field(default=None, description="Service account name (with namespace).")
    namespace: str | None = Field(
        default=None, max_length=63, description="Namespace of the service account; for a user, limits the token to it."
    )
    name: str = Field(default="", max_length=255)
    scopes: list[TokenScope] = Field(default=["read", "write"], min_length=1, max_length=20)
    days: int = Field(default=90, ge=1, le=3650)


class TokenOut(Out):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    namespace: str
    created_at: int
    created_by: str
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The secret. Shown once; store it now.")


class RoleBindingIn(Body):
    user: str | None = None
    service_account: str | None = None
    role: RoleName


class RoleBindingOut(BaseModel):
    namespace: str
    role: str
    principal: str
    kind: str
    created_at: int
    created_by: str


class AuditEventOut(Out):
    id: int
    time: int
    principal: str
    action: str
    method: str
    path: str
    namespace: str
    status_code: int
    outcome: str
    message: str


class ExperimentIn(Body):
    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=10_000)
    tags: dict[str, str] = Field(default_factory=dict)


class ExperimentPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    tags: dict[str, str] | None = None
    lifecycle_stage: Literal["active", "deleted"] | None = None


class ExperimentOut(Out):
    id: str
    namespace: str
    name: str
    description: str
    tags: dict[str, Any]
    lifecycle_stage: str
    created_at: int
    created_by: str
    updated_at: int


class RunIn(Body):
    experiment_id: str | None = Field(default=None, max_length=32)
    experiment_name: str | None = Field(default=None, max_length=255, description="Created if missing.")
    name: str = Field(default="", max_length=255)
    start_time: int | None = Field(default=None, ge=0, le=MAX_INT64)
    code_version: str = Field(default="", max_length=255)
    parent_run_id: str | None = Field(default=None, max_length=32)
    tags: dict[str, str] = Field(default_factory=dict)


class RunPatch(Body):
    status: RunStatus | None = None
    end_time: int | None = Field(default=None, ge=0, le=MAX_INT64)
    name: str | None = Field(default=None, max_length=255)
    lifecycle_stage: Literal["active", "deleted"] | None = None


class LatestMetricOut(Out):
    key: str
    value: float | None = Field(description="null when the logged value was NaN")
    step: int
    timestamp: int


class RunOut(Out):
    id: str
    namespace: str
    experiment_id: str
    name: str
    status: str
    start_time: int
    end_time: int | None
    code_version: str
    parent_run_id: str | None
    lifecycle_stage: str
    created_at: int
    created_by: str


class RunDetail(RunOut):
    params: dict[str, str]
    tags: dict[str, str]
    metrics: list[LatestMetricOut]


class MetricIn(TypedDict):
    """A metric point. A TypedDict, not a model: batches carry thousands and this halves parsing."""

    key: Annotated[str, Field(min_length=1, max_length=250)]
    value: float
    step: NotRequired[Annotated[int, Field(ge=-(2**63), le=MAX_INT64)]]
    timestamp: NotRequired[Annotated[int | None, Field(ge=0, le=MAX_INT64)]]


class LogBatchIn(Body):
    metrics: list[MetricIn] = Field(default_factory=list, max_length=10_000)
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class MetricPointOut(BaseModel):
    id: int
    value: float | None = Field(description="null when the logged value was NaN")
    step: int
    timestamp: int


class MetricHistoryOut(BaseModel):
    key: str
    points: list[MetricPointOut]
    next_after_id: int | None


class RunSearchIn(Body):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str = Field(default="", max_length=10_000)
    order_by: list[str] = Field(default_factory=list, max_length=10)
    max_results: int = Field(default=100, ge=1, le=1000)
    page_token: str | None = Field(default=None, max_length=1000)
    include_deleted: bool = False


class RunPageOut(BaseModel):
    runs: list[RunDetail]
    next_page_token: str | None


class ArtifactOut(Out):
    path: str
    digest: str
    size: int
    media_type: str
    created_at: int
    created_by: str


class BlobOut(BaseModel):
    digest: str
    size: int


class ModelIn(Body):
    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=10_000)
    tags: dict[str, str] = Field(default_factory=dict)


class ModelPatch(Body):
    description: str | None = Field(default=None, max_length=10_000)
    tags: dict[str, str] | None = None


class AliasOut(Out):
    alias: str
    version: int
    updated_at: int
    updated_by: str


class ModelOut(Out):
    id: str
    namespace: str
    name: str
    description: str
    tags: dict[str, Any]
    created_at: int
    created_by: str
    updated_at: int


class ModelDetail(ModelOut):
    aliases: list[AliasOut]
    latest_version: int | None


class DatasetRef(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(default="", max_length=255)
    digest: str = Field(min_length=1, max_length=255)


class ModelVersionIn(Body):
    artifact_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    format: Literal["sklearn", "onnx", "pickle"]
    onnx_digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    profile_digest: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="An uploaded JSON blob: the training data's reference profile."
    )
    signature: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] | None = None
    run_id: str | None = Field(default=None, max_length=32)
    datasets: list[DatasetRef] = Field(default_factory=list)
    code_version: str | None = Field(default=None, max_length=255)
    description: str = Field(default="", max_length=10_000)
    tags: dict[str, str] = Field(default_factory=dict)
    trust_pickle: bool = False


class ModelVersionPatch(Body):
    description: str = Field(max_length=10_000)


class ModelVersionOut(Out):
    id: str
    namespace: str
    version: int
    artifact_digest: str
    artifact_size: int
    format: str
    onnx_digest: str | None = None
    onnx_size: int | None = None
    profile_digest: str | None = None
    signature: dict[str, Any]
    metrics: dict[str, Any]
    run_id: str | None
    datasets: list[Any]
    code_version: str
    description: str
    tags: dict[str, Any]
    created_at: int
    created_by: str
    model: str = ""
    aliases: list[str] = Field(default_factory=list)


class AliasIn(Body):
    version: int = Field(ge=1, le=2**31 - 1)


class AliasChangeOut(Out):
    id: int
    alias: str
    version: int | None
    previous_version: int | None
    action: str
    time: int
    actor: str


class ErrorOut(BaseModel):
    error: str
    message: str
    details: dict[str, Any] | None = None


class Audience(Body):
    namespace: bool = Field(default=True, description="Every member of the namespace may call.")
    principals: list[str] = Field(default_factory=list, max_length=1000, description="Users, or 'sa:<namespace>/<account>'.")
    anonymous: bool = Field(default=False, description="Anyone, without a token; only a namespace admin may set it.")


class EndpointIn(Body):
    name: str = Field(min_length=1, max_length=63, examples=["churn"])
    description: str = Field(default="", max_length=10_000)
    audience: Audience = Field(default_factory=Audience)


class EndpointPatch(Body):
    description: str | None = Field(default=None, max_length=10_000)
    audience: Audience | None = None


class ModelRef(Body):
    model: str = Field(min_length=1, max_length=255)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    alias: str | None = Field(default=None, max_length=63)


class RouteIn(ModelRef):
    weight: int | None = Field(default=None, ge=0, le=100, description="Percent of traffic; default 100 for a single route.")


class Replicas(Body):
    min: int = Field(default=1, ge=1, le=64)
    max: int = Field(default=1, ge=1, le=64)


class RevisionIn(Body):
    routes: list[RouteIn] = Field(min_length=1, max_length=10)
    shadow: ModelRef | None = None
    replicas: Replicas = Field(default_factory=Replicas)
    sticky_header: str | None = Field(default=None, max_length=255)
    reason: Literal["deploy", "traffic", "scale"] = "deploy"


class RevisionOut(Out):
    revision: int
    routes: list[dict[str, Any]]
    shadow: dict[str, Any] | None
    replicas_min: int
    replicas_max: int
    sticky_header: str | None
    reason: str
    created_at: int
    created_by: str


class EndpointOut(Out):
    id: str
    namespace: str
    name: str
    description: str
    audience: dict[str, Any]
    current_revision: int | None
    created_at: int
    created_by: str
    updated_at: int


class EndpointDetail(EndpointOut):
    current: RevisionOut | None


class IntrospectIn(Body):
    token: str = Field(min_length=1, max_length=512)


PipelineRunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
StepStatus = Literal["pending", "running", "succeeded", "failed", "cached", "skipped"]
Executor = Literal["local", "ray"]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="sha256 hex of a blob uploaded to the namespace")]
CacheKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,255}$")]
MAX_INT32 = 2**31 - 1


class PipelineRunIn(Body):
    pipeline: str = Field(min_length=1, max_length=255, examples=["tabular-quickstart"])
    params: dict[str, Any] = Field(default_factory=dict)
    graph: dict[str, Any] = Field(default_factory=dict, description="The pipeline's description, as the runner gives it.")
    priority: int = Field(default=0, ge=-MAX_INT32, le=MAX_INT32)
    executor: Executor = "local"
    resumed_from: str | None = Field(default=None, max_length=32, description="The run this one resumes.")
    resources: dict[str, float] | None = Field(
        default=None, description="What the run asks its namespace's quota for: cpu, memory_mb, gpu."
    )
    trigger: str | None = Field(default=None, max_length=255, description="What started it, when no person did.")


class PipelineRunPatch(Body):
    status: PipelineRunStatus | None = None
    error: str | None = Field(default=None, max_length=1_000_000, description="Kept up to 64 KiB.")


class PipelineRunOut(Out):
    id: str
    namespace: str
    pipeline: str
    params: dict[str, Any]
    graph: dict[str, Any]
    status: str
    priority: int
    executor: str
    error: str | None
    resumed_from: str | None
    resources: dict[str, Any] | None
    trigger: str | None
    created_at: int
    created_by: str
    started_at: int | None
    finished_at: int | None


class QuotaIn(Body):
    cpu: float | None = Field(default=None, ge=0, le=1_000_000, description="CPUs the namespace's running runs may hold.")
    memory_mb: int | None = Field(default=None, ge=0, le=2**40, description="Memory in MiB.")
    gpu: float | None = Field(default=None, ge=0, le=1_000_000)
    concurrent_runs: int | None = Field(default=None, ge=0, le=1_000_000, description="Runs running at once.")


class QuotaOut(Out):
    cpu: float | None
    memory_mb: int | None
    gpu: float | None
    concurrent_runs: int | None
    updated_at: int
    updated_by: str


class QueueOut(BaseModel):
    namespace: str
    quota: QuotaOut | None = Field(description="None: the namespace has no quota, so runs never wait.")
    running: int
    used: dict[str, float] = Field(description="What the running runs hold: cpu, memory_mb, gpu.")
    queued: list[PipelineRunOut] = Field(description="Queued runs in the order they will start.")


EventKind = Literal["alert.fired", "dataset.version", "pipeline.finished"]


class EventIn(Body):
    kind: Literal["alert.fired", "dataset.version"]
    subject: str = Field(min_length=1, max_length=255, examples=["catalogue"])
    payload: dict[str, Any] | None = None


class EventOut(Out):
    id: int
    namespace: str
    kind: str
    subject: str
    payload: dict[str, Any] | None
    created_at: int
    created_by: str


class EventTrigger(Body):
    kind: EventKind
    subject: str = Field(min_length=1, max_length=255, description="The pipeline, dataset or alert name to react to.")
    status: Literal["succeeded", "failed", "cancelled"] | None = Field(
        default=None, description="For pipeline.finished: the outcome to react to (default succeeded)."
    )


class ScheduleIn(Body):
    pipeline: str = Field(min_length=3, max_length=1024, examples=["pipelines.train:quickstart"])
    workdir: str | None = Field(default=None, max_length=4096, description="Folder the pipeline imports from.")
    params: dict[str, Any] = Field(default_factory=dict)
    executor: Executor = "local"
    priority: int = Field(default=0, ge=-MAX_INT32, le=MAX_INT32)
    cron: str | None = Field(default=None, max_length=255, examples=["0 2 * * *"])
    timezone: str = Field(default="UTC", max_length=63, examples=["Europe/Paris"])
    on_event: EventTrigger | None = None
    enabled: bool = True


class SchedulePatch(Body):
    enabled: bool


class ScheduleOut(Out):
    id: str
    namespace: str
    name: str
    pipeline: str
    workdir: str | None
    params: dict[str, Any]
    executor: str
    priority: int
    cron: str | None
    timezone: str
    on_event: dict[str, Any] | None
    enabled: bool
    next_due_at: int | None
    created_at: int
    created_by: str
    updated_at: int


class ScheduleFireOut(Out):
    id: str
    fire_key: str
    due_at: int
    reason: str
    status: str
    pipeline_run_id: str | None
    error: str | None
    created_at: int


class StepArtifactIn(Body):
    digest: Digest
    materializer: str = Field(min_length=1, max_length=255)
    size: int | None = Field(default=None, ge=0, le=MAX_INT64)
    description: Any = None


class StepRunIn(Body):
    """An upsert: fields left out keep their values (defaults when the attempt is new)."""

    status: StepStatus | None = None
    cache_key: CacheKey | None = None
    inputs: dict[str, StepArtifactIn] | None = Field(default=None, description="{arg: {digest, materializer}}")
    outputs: dict[str, StepArtifactIn] | None = Field(
        default=None, description="{name: {digest, materializer, size, description}}"
    )
    error: str | None = Field(default=None, max_length=1_000_000, description="Kept up to 64 KiB.")
    cached_from: str | None = Field(default=None, max_length=32, description="The step run whose outputs this one reuses.")
    executor: Executor | None = None
    resources: dict[str, Any] | None = None
    usage: StepUsage | None = Field(default=None, description="What the attempt used, as its worker measured it.")
    started_at: int | None = Field(default=None, ge=0, le=MAX_INT64)
    finished_at: int | None = Field(default=None, ge=0, le=MAX_INT64)
    blobs: dict[Digest, Base64Bytes] | None = Field(
        default=None,
        description="Bytes of small outputs, base64 by sha256: stored and held by the namespace in the same "
        "transaction as the record (larger ones are uploaded first: PUT /namespaces/{namespace}/blobs).",
    )
    logs: list[LogLineIn] | None = Field(
        default=None, max_length=10_000, description="Log lines appended in the same transaction as the record."
    )


class StepUsage(Body):
    cpu_seconds: float = Field(ge=0, le=1e12, description="User plus system CPU time of the worker process.")
    max_rss_mb: float = Field(ge=0, le=1e12, description="Peak resident memory of the worker process, in MiB.")


class StepCacheIn(Body):
    """Record an attempt as served from the step cache, if a succeeded attempt with this cache key exists."""

    cache_key: CacheKey
    inputs: dict[str, StepArtifactIn] | None = Field(default=None, description="{arg: {digest, materializer}}")
    executor: Executor | None = None


class StepRunOut(Out):
    id: str
    pipeline_run_id: str
    namespace: str
    step: str
    attempt: int
    status: str
    cache_key: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    error: str | None
    cached_from: str | None
    executor: str
    resources: dict[str, Any] | None
    usage: dict[str, float] | None
    started_at: int | None
    finished_at: int | None
    created_at: int
    created_by: str


class LogLineIn(TypedDict):
    """One log line. A TypedDict, not a model: batches carry thousands."""

    message: Annotated[str, Field(max_length=65_536)]
    step: NotRequired[Annotated[str, Field(max_length=255)]]
    attempt: NotRequired[Annotated[int, Field(ge=0, le=MAX_INT32)]]
    ts: NotRequired[Annotated[int | None, Field(ge=0, le=MAX_INT64)]]
    level: NotRequired[Annotated[str | None, Field(max_length=32)]]
    extra: NotRequired[dict[str, Any] | None]
    run: NotRequired[Annotated[str | None, Field(max_length=32, description="This run's id, when a line carries it.")]]


class LogsIn(Body):
    lines: list[LogLineIn] = Field(max_length=10_000)


class LogLineOut(Out):
    id: int
    step: str
    attempt: int
    ts: int
    level: str
    message: str
    extra: dict[str, Any] | None
