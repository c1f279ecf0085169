"""The quickstart pipeline: ingest, validate, split, train, evaluate, gate, register, deploy.

    shipyard pipeline run examples.quickstart.pipeline:quickstart                  # from the repository root
    shipyard pipeline run examples.quickstart.pipeline:quickstart -p threshold=0.99  # the gate stops it
    shipyard pipeline run examples.quickstart.pipeline:quickstart -e ray             # the same steps as Ray tasks
    make demo                                           # on a fresh platform, then traffic through the gateway

It trains a classifier on the bundled breast-cancer data (``data/breast_cancer.csv``),
registers it only when its test accuracy clears ``threshold``, and serves it on the
endpoint ``endpoint``. Each step is deterministic (fixed seeds, one BLAS thread where
floating point sums are formed), so the same parameters give byte-identical outputs on
the local executor and on Ray, and a rerun is served from the cache.

Lineage needs no code here: the runner starts each step with the pipeline run in its
environment, and the SDK tags the tracking run and the model version created in
``register`` with it.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

import shipyard
from shipyard.pipelines import pipeline, step

HERE = Path(__file__).resolve().parent
BUNDLED = "data/breast_cancer.csv"  # relative to this folder, so cache keys do not depend on where the checkout is
TARGET = "target"  # 0 = malignant, 1 = benign
LABELS = (0, 1)
_MEASURES = (
    "radius", "texture", "perimeter", "area", "smoothness",
    "compactness", "concavity", "concave_points", "symmetry", "fractal_dimension",
)  # fmt: skip
FEATURES = (*(f"mean_{m}" for m in _MEASURES), *(f"{m}_error" for m in _MEASURES), *(f"worst_{m}" for m in _MEASURES))
MIN_ROWS = 100  # fewer rows than this cannot give a test split worth gating on
EXPERIMENT = "quickstart"

log = logging.getLogger("quickstart")


class Classifier(Protocol):
    """What the steps use of a model: scikit-learn's classifier interface.

    A protocol rather than ``sklearn.pipeline.Pipeline``, so that only the steps that need
    scikit-learn import it: each step runs in a fresh process, and that import alone takes
    about 1.5 s on two cores.
    """

    def fit(self, features: pd.DataFrame, labels: pd.Series) -> Any: ...
    def predict(self, features: pd.DataFrame) -> Any: ...
    def predict_proba(self, features: pd.DataFrame) -> Any: ...


class QualityGateFailed(Exception):
    """The model did not clear the evaluation threshold, so it is neither registered nor deployed."""


def resolve(data: str) -> Path:
    """``data`` as given, relative to this folder unless absolute."""
    path = Path(data)
    return path if path.is_absolute() else HERE / path


def file_digest(data: str) -> str:
    try:
        return hashlib.sha256(resolve(data).read_bytes()).hexdigest()
    except OSError as exc:
        expected = f"expected a CSV with the columns of {BUNDLED}"
        raise shipyard.InvalidInput(f"cannot read the data file {data!r} ({exc}): {expected}") from exc


# -- steps --------------------------------------------------------------------------------


@step
def ingest(data: str, sha256: str) -> pd.DataFrame:
    """Read the CSV; ``sha256`` pins its content, so a worker that sees another file fails instead of training on it."""
    raw = resolve(data).read_bytes()
    found = hashlib.sha256(raw).hexdigest()
    if found != sha256:
        raise shipyard.IntegrityFailure(f"{data} has sha256 {found}, expected {sha256}: the file changed after the run started")
    frame = pd.read_csv(io.BytesIO(raw))
    print(f"read {len(frame)} rows x {frame.shape[1]} columns from {data}")
    return frame


@step
def validate(frame: pd.DataFrame, min_rows: int = MIN_ROWS) -> pd.DataFrame:
    """Check the schema, missing values, labels and size; return the frame in the expected column order and dtypes.

    Every problem found is reported at once, so a bad file is fixed in one round.
    """
    problems: list[str] = []
    expected = [*FEATURES, TARGET]
    missing = [c for c in expected if c not in frame.columns]
    unexpected = [str(c) for c in frame.columns if c not in expected]
    if missing:
        problems.append(f"missing columns {missing}")
    if unexpected:
        problems.append(f"unexpected columns {unexpected}")
    usable = []  # columns with numbers only, whose values can be checked further
    for column in (c for c in expected if c in frame.columns):
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            problems.append(f"column {column!r} is {frame[column].dtype}, expected numbers")
            continue
        nulls = frame.index[frame[column].isna()].tolist()
        if nulls:
            more = "..." if len(nulls) > 5 else ""
            problems.append(f"column {column!r} has {len(nulls)} missing values (rows {nulls[:5]}{more})")
            continue
        usable.append(column)
    if TARGET in usable:
        labels = sorted(set(frame[TARGET].tolist()))
        if not set(labels) <= set(LABELS):
            problems.append(f"column {TARGET!r} holds {labels}, expected only {list(LABELS)}")
        elif len(labels) < len(LABELS):
            problems.append(f"column {TARGET!r} holds only {labels}, expected both of {list(LABELS)}")
    if len(frame) < min_rows:
        problems.append(f"{len(frame)} rows, expected at least {min_rows}")
    if problems:
        raise shipyard.InvalidInput("the data set fails validation: " + "; ".join(problems))
    checked = frame[expected].astype({**dict.fromkeys(FEATURES, "float64"), TARGET: "int64"})
    counts = checked[TARGET].value_counts().sort_index().to_dict()
    print(f"validated {len(checked)} rows: {len(FEATURES)} numeric features, no missing values, labels {counts}")
    return checked


@step(outputs=("train", "test"))
def split(frame: pd.DataFrame, test_share: float = 0.25, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified split: both parts keep the data set's share of each label."""
    from sklearn.model_selection import train_test_split

    train_part, test_part = train_test_split(frame, test_size=test_share, random_state=seed, stratify=frame[TARGET])
    print(f"split into {len(train_part)} training and {len(test_part)} test rows (seed {seed})")
    return train_part.reset_index(drop=True), test_part.reset_index(drop=True)


@step(resources={"cpu": 1})
def train(frame: pd.DataFrame, c: float = 1.0, seed: int = 42) -> Classifier:
    """Standardise, then fit a logistic regression (``c`` is scikit-learn's C, the inverse regularisation strength)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    classifier = LogisticRegression(C=c, max_iter=5000, random_state=seed)
    model: Classifier = Pipeline([("scale", StandardScaler()), ("classifier", classifier)])
    log.info("training on %d rows with C=%s", len(frame), c)
    # A Ray task gets as many BLAS threads as CPUs it asked for, a local process one per
    # core; sums split across threads can round differently, so one thread everywhere
    # gives the same model on every executor.
    with threadpool_limits(limits=1):
        model.fit(frame.drop(columns=TARGET), frame[TARGET])
    return model


@step
def evaluate(model: Classifier, frame: pd.DataFrame) -> dict[str, Any]:
    """Accuracy, F1 (of the benign class) and ROC AUC on the held-out rows."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from threadpoolctl import threadpool_limits

    features, labels = frame.drop(columns=TARGET), frame[TARGET]
    with threadpool_limits(limits=1):
        predicted = model.predict(features)
        scores = model.predict_proba(features)[:, 1]
    metrics = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted)),
        "roc_auc": float(roc_auc_score(labels, scores)),
        "test_rows": len(frame),
    }
    print("test metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    return metrics


@step
def gate(metrics: dict[str, Any], threshold: float = 0.95, metric: str = "accuracy") -> dict[str, Any]:
    """Fail the run unless ``metrics[metric] >= threshold``; pass the metrics on unchanged.

    Returning the metrics (not a verdict that names the threshold) keeps ``register``'s
    cache key free of the threshold: rerunning with another bar the model clears does
    not register the same model twice.
    """
    value = metrics.get(metric)
    if not isinstance(value, int | float):
        raise shipyard.InvalidInput(f"no metric {metric!r} to gate on: expected one of {sorted(metrics)}")
    if value < threshold:
        raise QualityGateFailed(
            f"{metric} {value:.4g} is below the threshold {threshold:g}: the model is not registered or deployed; "
            f"improve it (e.g. -p c=...) or lower the bar (-p threshold=...)"
        )
    print(f"{metric} {value:.4g} clears the threshold {threshold:g}")
    return metrics


@step
def register(
    model: Classifier,
    frame: pd.DataFrame,
    metrics: dict[str, Any],
    name: str,
    params: dict[str, Any],
    experiment: str = EXPERIMENT,
) -> dict[str, Any]:
    """Track a run (params and test metrics) and register the model under ``name``, linked to it.

    The tracking run is opened here, where the version is made, so that there is exactly
    one per version; the earlier steps stay pure and their cached outputs never point at a
    run of another pipeline run. The training rows give the signature and the dataset digest.
    """
    features = frame.drop(columns=TARGET)
    scores = {k: float(v) for k, v in metrics.items() if k != "test_rows"}
    with shipyard.Client() as client:  # SHIPYARD_URL, SHIPYARD_TOKEN and SHIPYARD_NAMESPACE come from the runner
        with shipyard.start_run(experiment, name=f"{name}-pipeline", params=params, client=client) as run:
            run.log_metrics(scores)
            version = run.register_model(
                name, model, training_data=features, metrics=scores, description="logistic regression on breast_cancer"
            )
    print(f"registered {name} v{version['version']} from tracking run {run.id}")
    # Only what is the same wherever the pipeline runs: ids and timestamps stay in the registry.
    return {"model": name, "version": int(version["version"])}


@step(name="deploy", retries=2, retry_backoff_s=0.5, cache=False)
def deploy_model(registered: dict[str, Any], endpoint: str, alias: str = "production") -> dict[str, Any]:
    """Point ``alias`` at the new version and serve that version on ``endpoint`` (created when missing).

    Never cached: what the endpoint serves can change outside the pipeline (a rollback), so
    this step looks every time, and makes a revision only when the endpoint serves something else.
    """
    name, version = str(registered["model"]), int(registered["version"])
    with shipyard.Client() as client:
        client.set_alias(name, alias, version)
        try:
            current = client.get_endpoint(endpoint).get("current") or {}
        except shipyard.NotFound:
            current = {}
        routes = current.get("routes") or []
        if [(r.get("model"), r.get("version")) for r in routes] == [(name, version)]:
            revision = int(current["revision"])
            print(f"{endpoint} already serves {name} v{version} (revision {revision})")
        else:
            revision = int(client.deploy(endpoint, name, version=version)["revision"])
            print(f"{endpoint} now serves {name} v{version} (revision {revision})")
    return {"endpoint": endpoint, "model": name, "version": version, "alias": alias, "revision": revision}


# -- the pipeline ---------------------------------------------------------------------------


@pipeline
def quickstart(
    data: str = BUNDLED,
    threshold: float = 0.95,
    c: float = 1.0,
    test_share: float = 0.25,
    seed: int = 42,
    model: str = "breast-cancer",
    endpoint: str = "breast-cancer",
    deploy: bool = True,
) -> None:
    """Train, gate, register and (with ``deploy``) serve a breast-cancer classifier."""
    # The file's digest is a parameter of ingest: the run records which data it read, and
    # the cache key changes when the file does (a path alone would not).
    frame = validate(ingest(data=data, sha256=file_digest(data)))
    train_part, test_part = split(frame, test_share=test_share, seed=seed)
    trained = train(train_part, c=c, seed=seed)
    passed = gate(evaluate(trained, test_part), threshold=threshold)
    params = {"estimator": "LogisticRegression", "c": c, "test_share": test_share, "seed": seed}
    registered = register(trained, train_part, passed, name=model, params=params)
    if deploy:  # a plain value while the graph is built, so the step is simply left out
        deploy_model(registered, endpoint=endpoint)
