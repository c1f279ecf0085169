"""Helpers for monitor tests: a deployed endpoint with a reference profile, and a real prediction log.

The log is written by the gateway's own writer (``PredictionLog``), so the tests read the
same Parquet layout the gateway produces. The data is synthetic with fixed seeds: four
numeric features and a 0/1 prediction that depends on ``score`` alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from shipyard.access.caller import Caller
from shipyard.monitoring.profile import Profile
from shipyard.registry import models, signature
from shipyard.registry.models import VersionDraft
from shipyard.runtime import Platform
from shipyard.serving import endpoints, revisions
from shipyard.serving.gateway.prediction_log import PredictionLog, PredictionRecord
from shipyard.serving.revisions import RevisionSpec
from shipyard.store.models import ModelVersion
from tests.conftest import held_blob

FEATURES = ("age", "income", "score", "visits")
START = 1_800_000_000_000
SECOND = 1000
SYSTEM = Caller.system()


def population(rows: int, seed: int) -> pd.DataFrame:
    """Draws from the one distribution the model was trained on."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40.0, 10.0, rows),
            "income": rng.lognormal(10.0, 0.5, rows),
            "score": rng.uniform(0.0, 1.0, rows),
            "visits": rng.poisson(8.0, rows).astype(np.float64),
        }
    )


def predict(frame: pd.DataFrame) -> np.ndarray:
    return (frame["score"].to_numpy() > 0.5).astype(np.int64)


def reference_profile(frame: pd.DataFrame) -> Profile:
    """What registration stores: the training inputs plus the model's predictions on them."""
    return Profile.from_frame(frame.assign(prediction=predict(frame)))


def register(
    platform: Platform,
    namespace: str,
    model: str,
    frame: pd.DataFrame | None,
    *,
    profile: bool = True,
    reference: Profile | None = None,
) -> int:
    """A version of ``model`` whose signature names the features; with a stored reference profile unless told not to."""
    digest = held_blob(platform, namespace, f"model {model}".encode())
    data = frame if frame is not None else population(10, 0)
    with platform.db.session(write=True) as session:
        try:
            models.get(session, SYSTEM, namespace, model)
        except LookupError:
            models.create(session, SYSTEM, namespace, model)
        draft = VersionDraft(digest, "sklearn", signature=signature.infer(data, predict(data)))
        version = models.create_version(session, SYSTEM, platform.artifacts, namespace, model, draft)
        if profile and frame is not None:
            stored = reference if reference is not None else reference_profile(frame)
            blob = platform.artifacts.put_bytes(orjson.dumps(stored.to_dict()))
            row = session.get(ModelVersion, version.id)
            assert row is not None
            row.profile_digest = blob.digest
        return version.version


def deploy(platform: Platform, namespace: str, endpoint: str, routes: Sequence[dict[str, object]]) -> int:
    """Create ``endpoint`` if needed and make ``routes`` its current revision; returns the revision number."""
    with platform.db.session(write=True) as session:
        try:
            endpoints.get(session, SYSTEM, namespace, endpoint)
        except LookupError:
            endpoints.create(session, SYSTEM, namespace, endpoint)
        return revisions.create(session, SYSTEM, namespace, endpoint, RevisionSpec(routes=[dict(r) for r in routes])).revision


@dataclass
class Traffic:
    """Writes requests into a real prediction log, on a clock the test controls."""

    url: str
    namespace: str
    endpoint: str
    model: str = "churn"
    now: int = START
    ids: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.log = PredictionLog(self.url)

    def send(
        self,
        frame: pd.DataFrame,
        *,
        version: int = 1,
        revision: int = 1,
        rows_per_request: int = 2,
        every_ms: int = 10,
        latency_ms: float = 5.0,
        predictions: np.ndarray | None = None,
    ) -> None:
        """``frame``'s rows as answered requests of ``rows_per_request`` rows each."""
        outputs = predict(frame) if predictions is None else predictions
        values = frame[list(FEATURES)].to_numpy(dtype=np.float64)
        for start in range(0, len(frame), rows_per_request):
            self.now += every_ms
            block = values[start : start + rows_per_request]
            self.log.add(
                PredictionRecord(
                    request_id=f"r{next(self.ids)}", timestamp_ms=self.now, namespace=self.namespace, endpoint=self.endpoint,
                    revision=revision, model=self.model, version=version, protocol="v1", status=200,
                    latency_ms=latency_ms, inputs=block, outputs=outputs[start : start + rows_per_request].tolist(),
                )
            )  # fmt: skip
        self.log.flush()

    def fail(self, count: int, *, status: int = 400, version: int | None = 1, latency_ms: float = 1.0) -> None:
        """``count`` requests refused before a model answered: no inputs, no outputs."""
        for _ in range(count):
            self.now += 10
            self.log.add(
                PredictionRecord(
                    request_id=f"r{next(self.ids)}", timestamp_ms=self.now, namespace=self.namespace, endpoint=self.endpoint,
                    revision=1, model=self.model, version=version, protocol="v1", status=status, latency_ms=latency_ms,
                    inputs=None, outputs=None, error="bad input",
                )
            )  # fmt: skip
        self.log.flush()


def log_url(tmp_path: Path) -> str:
    return str(tmp_path / "predictions")
