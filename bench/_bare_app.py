"""The bare reference for bench/serving.py: the least a Python server can do to answer a prediction.

    BENCH_ONNX_PATH=model.onnx uvicorn _bare_app:app --app-dir bench --workers 2 --no-access-log

Starlette, orjson and one onnxruntime session per worker: no auth, no routing table, no
validation beyond parsing the JSON, no logging, no metrics. ``POST /predict`` takes
``{"instances": [[...], ...]}`` and answers ``{"predictions": [...]}``; ``GET /health`` answers 200.
It shows what the hardware and the Python stack allow, so Shipyard's gateway can be measured
against it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnxruntime
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# Same session options as the gateway (onnxruntime's defaults).
_session = onnxruntime.InferenceSession(os.environ["BENCH_ONNX_PATH"], providers=["CPUExecutionProvider"])
_input = _session.get_inputs()[0].name
_label = _session.get_outputs()[0].name


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


async def predict(request: Request) -> Response:
    try:
        rows = np.asarray(orjson.loads(await request.body())["instances"], dtype=np.float32)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        return _json({"error": f"bad request: {exc}"}, 400)
    labels = _session.run([_label], {_input: rows})[0]
    return _json({"predictions": labels.reshape(-1).tolist()})


async def health(_: Request) -> Response:
    return _json({"ok": True})


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health, methods=["GET"])])
