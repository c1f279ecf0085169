"""Which model version answers a request: weighted choice, sticky sessions, and shadows.

A request maps to a point in [0, 100): random, or, when the endpoint names a sticky
header and the request carries it, a hash of the header's value, so one value always
lands on one version (across workers and restarts, as the hash is not salted). The
route whose cumulative weight first exceeds the point answers.

A shadow model sees the same rows after the response has gone; its answer is logged,
never returned.
"""

from __future__ import annotations

import hashlib
import logging
import random
from typing import Any

from shipyard.serving.gateway.models import ServedModel
from shipyard.serving.gateway.state import ServedEndpoint

shadow_log = logging.getLogger("shipyard.serving.shadow")
_SCALE = 100.0 / 2**64


def sticky_point(value: str) -> float:
    digest = hashlib.blake2b(value.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") * _SCALE


def choose(endpoint: ServedEndpoint, sticky_value: str | None = None, rng: random.Random | None = None) -> ServedModel:
    routes = endpoint.routes
    if len(routes) == 1:
        return routes[0].served
    point = sticky_point(sticky_value) if sticky_value is not None else (rng or random).random() * 100.0
    for route in routes:
        if point < route.upper:
            return route.served
    return routes[-1].served


def run_shadow(endpoint: ServedEndpoint, shadow: ServedModel, rows: Any, request_id: str, primary: str) -> None:
    """Predict with the shadow and log the answer; failures are logged too, never raised."""
    try:
        predictions = shadow.predictor.predict(rows)
    except Exception as exc:
        shadow_log.warning(
            "shadow %s failed on request %s to %s: %s", shadow.label, request_id, endpoint.key, exc, extra=_extra(request_id)
        )
        return
    shadow_log.info(
        "shadow %s on request %s to %s (answered by %s): %s",
        shadow.label,
        request_id,
        endpoint.key,
        primary,
        predictions,
        extra={**_extra(request_id), "shadow_model": shadow.label, "predictions": predictions},
    )


def _extra(request_id: str) -> dict[str, Any]:
    return {"request_id": request_id}
