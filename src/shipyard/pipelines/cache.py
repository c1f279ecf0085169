"""Cache keys: a step is skipped when the same code met the same inputs, parameters and environment.

The key hashes the step's source, the digests of its inputs (content addresses, so a
changed upstream output changes every key below it), its literal parameters, the options
that shape its outputs, and the environment that could change its answer (Python and
library versions). Equal keys in one namespace mean the earlier outputs can be reused.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import orjson

from shipyard._version import __version__
from shipyard.pipelines.graph import Node

# Libraries whose version can change a step's output for the same code and inputs.
TRACKED_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "skops")


def environment() -> dict[str, str]:
    found = {"python": platform.python_version(), "shipyard": __version__}
    for package in TRACKED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def cache_key(node: Node, input_digests: Mapping[str, str], env: Mapping[str, str]) -> str:
    options = node.step.options
    payload: dict[str, Any] = {
        "step": node.step.name,
        "code": node.step.code_hash,
        "inputs": dict(sorted(input_digests.items())),
        "params": node.params,
        "outputs": list(options.outputs),
        "materializer": options.materializer,
        "environment": dict(sorted(env.items())),
    }
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
