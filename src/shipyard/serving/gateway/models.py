"""Served models: a model version's predictor with what the hot path needs at hand."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from shipyard.errors import IntegrityFailure
from shipyard.registry import formats
from shipyard.registry.predictor import OnnxPredictor, Predictor
from shipyard.serving.gateway.batching import MicroBatcher
from shipyard.serving.gateway.validation import InputSchema, schema_from_signature


class ModelSource(Protocol):
    """Where model files come from (the control plane, through the SDK)."""

    def model_file(self, namespace: str, model: str, version: int, *, onnx: bool) -> bytes: ...


def load_predictor(main: bytes, fmt: str, onnx_data: bytes | None = None) -> Predictor:
    """The one place the gateway turns bytes into a predictor (ONNX export first, when there is one)."""
    return formats.load_for_serving(main, fmt, onnx_data)


@dataclass(frozen=True, slots=True)
class ServedModel:
    model: str
    version: int
    fmt: str
    digest: str
    onnx_digest: str | None
    predictor: Predictor
    schema: InputSchema
    signature: Mapping[str, Any] = field(default_factory=dict)
    batcher: MicroBatcher | None = None  # shared by every route to the same loaded model

    @property
    def label(self) -> str:
        """``model:version``, as sent in ``X-Model-Version``."""
        return f"{self.model}:{self.version}"

    @property
    def free_proba(self) -> bool:
        """Whether class probabilities come out of the same model call as the labels (ONNX classifiers do)."""
        return isinstance(self.predictor, OnnxPredictor) and self.predictor.has_proba

    @property
    def platform(self) -> str:
        return "onnxruntime_onnx" if self.onnx_digest or self.fmt == formats.ONNX else self.fmt


def cache_key(target: Mapping[str, Any]) -> tuple[str, str | None]:
    return (str(target["digest"]), target.get("onnx_digest"))


def load(source: ModelSource, namespace: str, target: Mapping[str, Any]) -> Predictor:
    """Download a route's files, check them against the digests in the desired state, load and warm."""
    model, version = str(target["model"]), int(target["version"])
    main = _checked(source.model_file(namespace, model, version, onnx=False), str(target["digest"]), model, version)
    onnx_digest = target.get("onnx_digest")
    onnx_data = None
    if onnx_digest:
        onnx_data = _checked(source.model_file(namespace, model, version, onnx=True), str(onnx_digest), model, version)
    predictor = load_predictor(main, str(target["format"]), onnx_data)
    warm(predictor, schema_from_signature(target.get("signature")))
    return predictor


def warm(predictor: Predictor, schema: InputSchema) -> None:
    """One prediction on a zero row, so the first real request pays no lazy initialisation."""
    width = schema.width or _width_of(predictor)
    if width:
        predictor.predict_with_proba(np.zeros((1, width), dtype=np.float64))


def served(target: Mapping[str, Any], predictor: Predictor, batcher: MicroBatcher | None = None) -> ServedModel:
    signature = target.get("signature") or {}
    schema = schema_from_signature(signature)
    if schema.width is None and (width := _width_of(predictor)):
        schema = InputSchema(width=width, dtype=schema.dtype)
    return ServedModel(
        model=str(target["model"]),
        version=int(target["version"]),
        fmt=str(target["format"]),
        digest=str(target["digest"]),
        onnx_digest=target.get("onnx_digest"),
        predictor=predictor,
        schema=schema,
        signature=signature,
        batcher=batcher,
    )


def _width_of(predictor: Predictor) -> int | None:
    model = getattr(predictor, "model", None)
    width = getattr(model, "n_features_in_", None)
    if width is None and (session := getattr(predictor, "session", None)) is not None:
        shape = session.get_inputs()[0].shape
        width = shape[1] if len(shape) == 2 else None
    return int(width) if isinstance(width, int | np.integer) else None


def _checked(data: bytes, digest: str, model: str, version: int) -> bytes:
    if hashlib.sha256(data).hexdigest() != digest:
        raise IntegrityFailure(f"model {model} v{version} does not match its digest {digest[:12]}...: not serving it")
    return data
