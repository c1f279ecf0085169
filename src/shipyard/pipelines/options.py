"""Step options: what a step asks of the runner, checked once when the step is declared.

Options are frozen dataclasses with typed defaults. ``parse`` is the way in from user code:
it rejects unknown names with the closest known one suggested, so a typo such as
``retry=3`` fails at import time instead of quietly running without retries. The
constructors check the same ranges, so a stored ``to_dict()`` can be rebuilt safely.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidPipeline

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Kubernetes-style quantities; the binary suffixes are what pods and Ray workers are sized in.
_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)\s*")
_BYTES = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_MIB = 2**20


def got(value: Any) -> str:
    """``'two' (str)``: the value and its type, for messages that say expected vs got."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def for_step(step: str | None) -> str:
    return f" for step {step!r}" if step else ""


def unknown_name(kind: str, key: str, known: Iterable[str], where: str = "") -> InvalidPipeline:
    """The error for a name that is not one of ``known``, with the closest one suggested."""
    names = sorted(known)
    message = f"unknown {kind} {key!r}{where}: expected one of {', '.join(names) or '(none)'}"
    close = difflib.get_close_matches(key, names, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return InvalidPipeline(message)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _memory_mb(value: Any, where: str) -> int:
    match = _MEMORY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidPipeline(f"resource 'memory'{where} expects a size such as '512Mi', '2Gi' or '1G', got {got(value)}")
    size = float(match.group(1)) * _BYTES[match.group(2)]
    return math.ceil(size / _MIB)  # round up: asking for slightly more never starves a step


@dataclass(frozen=True)
class Resources:
    """What one attempt of a step needs. ``memory_mb`` is in mebibytes (Kubernetes ``Mi``); 0 means no request."""

    cpu: float = 1.0
    memory_mb: int = 0
    gpu: float = 0.0

    def __post_init__(self) -> None:
        _check_resources(self.cpu, self.memory_mb, self.gpu, "")

    @classmethod
    def parse(cls, value: Resources | Mapping[str, Any] | None, *, step: str | None = None) -> Resources:
        """None, a Resources, or a mapping of cpu, gpu, memory_mb or memory (a size such as '2Gi')."""
        if value is None:
            return cls()
        if isinstance(value, Resources):
            return value
        where = for_step(step)
        if not isinstance(value, Mapping):
            raise InvalidPipeline(
                f"step option 'resources'{where} expects a mapping with keys cpu, gpu, memory, memory_mb, got {got(value)}"
            )
        known = ("cpu", "gpu", "memory", "memory_mb")
        for key in value:
            if key not in known:
                raise unknown_name("resource", str(key), known, where)
        if "memory" in value and "memory_mb" in value:
            raise InvalidPipeline(f"resources{where} set both 'memory' and 'memory_mb': expected one of them")
        cpu, gpu = value.get("cpu", cls.cpu), value.get("gpu", cls.gpu)
        memory_mb = _memory_mb(value["memory"], where) if "memory" in value else value.get("memory_mb", cls.memory_mb)
        _check_resources(cpu, memory_mb, gpu, where)
        return cls(cpu=float(cpu), memory_mb=memory_mb, gpu=float(gpu))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_resources(cpu: Any, memory_mb: Any, gpu: Any, where: str) -> None:
    for key, value in (("cpu", cpu), ("gpu", gpu)):
        if not _is_number(value) or value < 0:
            raise InvalidPipeline(f"resource {key!r}{where} expects a number >= 0, got {got(value)}")
    if not isinstance(memory_mb, int) or isinstance(memory_mb, bool) or memory_mb < 0:
        raise InvalidPipeline(f"resource 'memory_mb'{where} expects an integer >= 0, got {got(memory_mb)}")


@dataclass(frozen=True)
class StepOptions:
    """How a step is run and cached.

    ``outputs`` names what the step returns (several names mean it returns a tuple of that
    length); ``materializer`` names the plugin that stores those outputs instead of one
    chosen by their type.
    """

    name: str | None = None
    resources: Resources = Resources()
    retries: int = 0
    retry_backoff_s: float = 1.0
    timeout_s: float | None = None
    cache: bool = True
    outputs: tuple[str, ...] = ("output",)
    materializer: str | None = None

    def __post_init__(self) -> None:
        _check_options(_fields(self), for_step(self.name))

    @classmethod
    def parse(cls, _step: str | None = None, /, **options: Any) -> StepOptions:
        """Options as given to ``@step(...)``; ``_step`` (the function's name) labels messages."""
        known = [f.name for f in dataclasses.fields(cls)]
        for key in options:
            if key not in known:
                raise unknown_name("step option", key, known, for_step(options.get("name") or _step))
        _check_name(options.get("name"), for_step(_step))
        label = options.get("name") or _step
        values = {**_fields(cls()), **options}
        values["resources"] = Resources.parse(values["resources"], step=label)
        if isinstance(values["outputs"], str):
            values["outputs"] = (values["outputs"],)
        elif isinstance(values["outputs"], list):
            values["outputs"] = tuple(values["outputs"])
        _check_options(values, for_step(label))
        for key in ("retry_backoff_s", "timeout_s"):  # ints are fine for seconds; store one type
            if values[key] is not None:
                values[key] = float(values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["outputs"] = list(self.outputs)
        return data


def _fields(options: StepOptions) -> dict[str, Any]:
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}


def _check_name(name: Any, where: str) -> None:
    if name is not None and not (isinstance(name, str) and _STEP_NAME.fullmatch(name)):
        raise InvalidPipeline(
            f"step option 'name'{where} expects letters, digits, '_', '-' or '.', starting with a letter or '_', got {got(name)}"
        )


def _check_options(values: Mapping[str, Any], where: str) -> None:
    _check_name(values["name"], "")
    if not isinstance(values["resources"], Resources):
        raise InvalidPipeline(f"step option 'resources'{where} expects Resources, got {got(values['resources'])}")
    retries = values["retries"]
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise InvalidPipeline(f"step option 'retries'{where} expects an integer >= 0, got {got(retries)}")
    backoff = values["retry_backoff_s"]
    if not _is_number(backoff) or backoff < 0:
        raise InvalidPipeline(f"step option 'retry_backoff_s'{where} expects seconds >= 0, got {got(backoff)}")
    timeout = values["timeout_s"]
    if timeout is not None and (not _is_number(timeout) or timeout <= 0):
        raise InvalidPipeline(f"step option 'timeout_s'{where} expects seconds > 0 or None, got {got(timeout)}")
    if not isinstance(values["cache"], bool):
        raise InvalidPipeline(f"step option 'cache'{where} expects True or False, got {got(values['cache'])}")
    _check_outputs(values["outputs"], where)
    materializer = values["materializer"]
    if materializer is not None and not (isinstance(materializer, str) and materializer):
        raise InvalidPipeline(f"step option 'materializer'{where} expects a plugin name or None, got {got(materializer)}")


def _check_outputs(outputs: Any, where: str) -> None:
    expected = f"step option 'outputs'{where} expects a non-empty list of unique identifiers"
    if not isinstance(outputs, tuple) or not outputs:
        raise InvalidPipeline(f"{expected}, got {got(outputs)}")
    for name in outputs:
        if not (isinstance(name, str) and _IDENTIFIER.fullmatch(name)):
            raise InvalidPipeline(f"{expected}, got {got(name)} among them")
    duplicates = sorted({name for name in outputs if outputs.count(name) > 1})
    if duplicates:
        raise InvalidPipeline(f"{expected}, got {', '.join(map(repr, duplicates))} more than once")
