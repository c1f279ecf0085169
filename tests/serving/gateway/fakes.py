"""An in-memory control plane for in-process gateway tests (the end-to-end tests use the real one)."""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from shipyard.registry import formats, signature
from shipyard.serving.gateway.state import StatePoller

HOUR_MS = 3_600_000


@functools.cache
def breast_cancer_models() -> tuple[np.ndarray[Any, Any], LogisticRegression, LogisticRegression]:
    """Standardised features and two classifiers trained on opposite labels, so their answers differ."""
    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)  # scaled, so the solver converges in a few iterations
    first = LogisticRegression(max_iter=1000).fit(x, y)
    second = LogisticRegression(max_iter=1000).fit(x, 1 - y)
    return x, first, second


class FakeControlPlane:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str, int, bool], bytes] = {}
        self.targets: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.endpoints: list[dict[str, Any]] = []
        self.tokens: dict[str, dict[str, Any]] = {}
        self.introspections = 0
        self.downloads = 0

    def add_model(self, namespace: str, name: str, version: int, model: Any, training_data: Any) -> dict[str, Any]:
        data, fmt = formats.dump_model(model)
        self.files[(namespace, name, version, False)] = data
        target = {
            "model": name,
            "version": version,
            "format": fmt,
            "digest": hashlib.sha256(data).hexdigest(),
            "onnx_digest": None,
            "signature": signature.infer(training_data, model.predict(training_data[:10])),
        }
        self.targets[(namespace, name, version)] = target
        return target

    def deploy(
        self,
        namespace: str,
        name: str,
        routes: list[tuple[str, int, int]],
        *,
        audience: Mapping[str, Any] | None = None,
        shadow: tuple[str, int] | None = None,
        sticky_header: str | None = None,
    ) -> None:
        self.endpoints = [e for e in self.endpoints if (e["namespace"], e["name"]) != (namespace, name)]
        self.endpoints.append(
            {
                "namespace": namespace,
                "name": name,
                "revision": len(self.endpoints) + 1,
                "audience": dict(audience or {"namespace": True, "principals": [], "anonymous": False}),
                "sticky_header": sticky_header,
                "routes": [{**self.targets[(namespace, m, v)], "weight": w} for m, v, w in routes],
                "shadow": self.targets[(namespace, *shadow)] if shadow else None,
            }
        )

    def add_token(self, token: str, principal: str, roles: Mapping[str, str], **fields: Any) -> None:
        self.tokens[token] = {
            "active": True,
            "principal": principal,
            "kind": "user",
            "roles": dict(roles),
            "scopes": ["read"],
            "token_namespace": "",
            "expires_at": int(time.time() * 1000) + HOUR_MS,
            **fields,
        }

    # -- the ControlPlane protocol ---------------------------------------------------

    def desired_state(self, etag: str | None) -> Mapping[str, Any] | None:
        current = hashlib.sha256(orjson.dumps(self.endpoints, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
        if etag == current:
            return None
        return {"etag": current, "endpoints": self.endpoints}

    def introspect_token(self, token: str) -> Mapping[str, Any]:
        self.introspections += 1
        return self.tokens.get(token, {"active": False, "reason": "unknown token"})

    def model_file(self, namespace: str, model: str, version: int, *, onnx: bool) -> bytes:
        self.downloads += 1
        return self.files[(namespace, model, version, onnx)]


def loaded(control: FakeControlPlane) -> StatePoller:
    poller = StatePoller(control, interval=1.0)
    poller.poll_once()
    return poller
