"""The pipeline DSL: ``@step`` and ``@pipeline``.

Use ``@step`` on a function that does one unit of work whose result is worth caching or
retrying on its own (load, clean, train, evaluate). Use ``@pipeline`` on a function that
only calls steps: building it traces those calls into a Graph instead of running them, so
a wrong pipeline fails before any step runs. Outside a build a step is its plain function,
which keeps it easy to try in a notebook or a test.
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import importlib
import inspect
import textwrap
import types
import typing
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final, overload

from shipyard.errors import InvalidPipeline
from shipyard.pipelines.graph import JSON_VALUES, Graph, Node, Output, json_problem
from shipyard.pipelines.options import StepOptions, for_step, got, unknown_name

# The graph being built in this context; a contextvar so that builds in other threads or
# nested builds never see each other's nodes.
_BUILDING: ContextVar[Graph | None] = ContextVar("shipyard_pipeline_build", default=None)
_NAMED_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"

    def __reduce__(self) -> str:
        return "REQUIRED"  # unpickles as the module's one instance


REQUIRED: Final = _Required()
"""The default of a pipeline parameter that ``build()`` must be given."""


def _check_function(fn: Any, decorator: str) -> None:
    if isinstance(fn, str):
        raise InvalidPipeline(f"{decorator} expects a function, got {got(fn)}; to name it use {decorator}(name={fn!r})")
    if not inspect.isfunction(fn) or inspect.iscoroutinefunction(fn):
        raise InvalidPipeline(f"{decorator} expects a plain (not async) function, got {got(fn)}")


def _load(module: str, qualname: str) -> Any:
    """Find a step or pipeline by where it is defined; how both are unpickled."""
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, Step | Pipeline):
        raise InvalidPipeline(f"{module}.{qualname} is {got(target)}: expected a function decorated with @step or @pipeline")
    return target


def _reduce(obj: Step | Pipeline, kind: str) -> tuple[Any, ...]:
    # By reference, like functions: the other process imports the module, so the step
    # runs its real code and options rather than a copy frozen at pickling time.
    module, qualname = obj.fn.__module__, obj.fn.__qualname__
    try:
        found = _load(module, qualname)
    except (ImportError, AttributeError, InvalidPipeline):
        found = None
    if found is not obj:
        raise InvalidPipeline(
            f"{kind} {obj.name!r} cannot be sent to another process: expected {module}.{qualname} to name it, "
            "got something else; define it with a decorator at module level"
        )
    return (_load, (module, qualname))


class Step:
    """A function with the options its runner needs; see ``step``."""

    def __init__(self, fn: Callable[..., Any], options: StepOptions | None = None) -> None:
        _check_function(fn, "@step")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.options = options or StepOptions()
        self.name: str = self.options.name or fn.__name__
        self.signature = inspect.signature(fn)
        for parameter in self.signature.parameters.values():
            if parameter.kind not in (*_NAMED_KINDS, inspect.Parameter.VAR_KEYWORD):
                raise InvalidPipeline(
                    f"step {self.name!r} has the {_describe(parameter)}: expected named parameters only, "
                    "since runners pass every argument by keyword"
                )

    def __repr__(self) -> str:
        return f"<Step {self.name!r} of {self.fn.__module__}.{self.fn.__qualname__}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce(self, "step")

    @functools.cached_property
    def code_hash(self) -> str:
        """sha256 of the function's source (decorators left out), or of its bytecode where there is no source."""
        try:
            text = _without_decorators(textwrap.dedent(inspect.getsource(self.fn))).encode()
        except (OSError, TypeError):  # defined in exec() or a REPL without source
            text = _code_bytes(self.fn.__code__)
        return hashlib.sha256(text).hexdigest()

    @functools.cached_property
    def hints(self) -> dict[str, Any]:
        """Resolved annotations (also when written as strings); empty where they cannot be resolved."""
        try:
            return typing.get_type_hints(self.fn)
        except Exception:  # e.g. names imported only under TYPE_CHECKING
            return {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = _BUILDING.get()
        if graph is None:
            return self.fn(*args, **kwargs)
        return self._trace(graph, args, kwargs)

    def _trace(self, graph: Graph, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Output | tuple[Output, ...]:
        inputs: dict[str, Output] = {}
        params: dict[str, Any] = {}
        for arg, value in self._bind(args, kwargs).items():
            if isinstance(value, Output):
                inputs[arg] = value
                continue
            problem = json_problem(value)
            if problem:
                expected = f"expects an output or a JSON value ({JSON_VALUES})"
                raise InvalidPipeline(f"step {self.name!r} argument {arg!r} {expected}, got {problem}")
            params[arg] = copy.deepcopy(value)
        for arg, parameter in self.signature.parameters.items():
            # Defaults become part of the node so they show in the graph; ones that are not
            # JSON (rare) stay in the function, where the code hash still covers them.
            default = parameter.default
            if arg not in inputs and arg not in params and default is not parameter.empty and json_problem(default) is None:
                params[arg] = copy.deepcopy(default)
        node = graph.add(Node(name=_free_name(graph, self.name), step=self, inputs=inputs, params=params))
        names = self.options.outputs
        annotations = _output_annotations(self.hints.get("return"), len(names))
        outputs = tuple(Output(node.name, name, annotation) for name, annotation in zip(names, annotations, strict=True))
        return outputs[0] if len(outputs) == 1 else outputs

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        parameters = self.signature.parameters
        named = [name for name, p in parameters.items() if p.kind in _NAMED_KINDS]
        extra = next((name for name, p in parameters.items() if p.kind is inspect.Parameter.VAR_KEYWORD), None)
        for key in kwargs:
            if key not in parameters and extra is None:
                raise unknown_name("argument", key, named, for_step(self.name))
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            expected = f"{self.fn.__name__}{self.signature}"
            raise InvalidPipeline(f"step {self.name!r} cannot take these arguments ({exc}): expected {expected}") from None
        for name in named:
            if name not in bound.arguments and parameters[name].default is parameters[name].empty:
                call = f"{self.fn.__name__}({name}=...)"
                raise InvalidPipeline(f"step {self.name!r} is missing its argument {name!r}: pass it as {call}")
        arguments = dict(bound.arguments)
        arguments.update(arguments.pop(extra, {}) if extra else {})
        return arguments


class Pipeline:
    """A function that calls steps; ``build(**params)`` traces it into a validated Graph."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        _check_function(fn, "@pipeline")
        functools.update_wrapper(typing.cast(Callable[..., Any], self), fn)  # for help() and inspect.signature()
        self.fn = fn
        self.name: str = name or fn.__name__
        if not isinstance(self.name, str):
            raise InvalidPipeline(f"pipeline option 'name' expects a string, got {got(self.name)}")
        self.signature = inspect.signature(fn)
        self.parameters: dict[str, Any] = {}
        for arg, parameter in self.signature.parameters.items():
            if parameter.kind not in _NAMED_KINDS:
                raise InvalidPipeline(f"pipeline {self.name!r} has the {_describe(parameter)}: expected named parameters only")
            default = REQUIRED if parameter.default is parameter.empty else parameter.default
            problem = None if default is REQUIRED else json_problem(default)
            if problem:
                expected = f"expects a JSON default ({JSON_VALUES})"
                raise InvalidPipeline(f"pipeline {self.name!r} parameter {arg!r} {expected}, got {problem}")
            self.parameters[arg] = default

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r} of {self.fn.__module__}.{self.fn.__qualname__}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return _reduce(self, "pipeline")

    def build(self, **params: Any) -> Graph:
        """Trace the pipeline function with these parameters; raises InvalidPipeline before anything runs."""
        for key in params:
            if key not in self.parameters:
                raise unknown_name("parameter", key, self.parameters, f" for pipeline {self.name!r}")
        missing = [key for key, default in self.parameters.items() if default is REQUIRED and key not in params]
        if missing:
            raise InvalidPipeline(
                f"pipeline {self.name!r} is missing required parameters: {', '.join(missing)}; "
                f"pass them as build({', '.join(f'{key}=...' for key in missing)})"
            )
        values = {key: params.get(key, default) for key, default in self.parameters.items()}
        for key, value in values.items():
            problem = json_problem(value)
            if problem:
                expected = f"expects a JSON value ({JSON_VALUES})"
                raise InvalidPipeline(f"pipeline {self.name!r} parameter {key!r} {expected}, got {problem}")
        graph = Graph(pipeline=self.name, params=copy.deepcopy(values))
        token = _BUILDING.set(graph)
        try:
            self.fn(**copy.deepcopy(values))
        finally:
            _BUILDING.reset(token)
        graph.validate()
        return graph


@overload
def step(fn: Callable[..., Any], /, **options: Any) -> Step: ...
@overload
def step(fn: None = None, /, **options: Any) -> Callable[[Callable[..., Any]], Step]: ...
def step(fn: Callable[..., Any] | None = None, /, **options: Any) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step: ``@step`` or ``@step(retries=2, resources={"cpu": 2}, timeout_s=60)``.

    Options (see StepOptions): name, resources, retries, retry_backoff_s, timeout_s, cache,
    outputs, materializer. Unknown ones are rejected with the closest name suggested.
    """

    def decorate(fn: Callable[..., Any]) -> Step:
        _check_function(fn, "@step")
        return Step(fn, StepOptions.parse(fn.__name__, **options))

    return decorate if fn is None else decorate(fn)


@overload
def pipeline(fn: Callable[..., Any], /, **options: Any) -> Pipeline: ...
@overload
def pipeline(fn: None = None, /, **options: Any) -> Callable[[Callable[..., Any]], Pipeline]: ...
def pipeline(fn: Callable[..., Any] | None = None, /, **options: Any) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function a pipeline: ``@pipeline`` or ``@pipeline(name="nightly")``; its parameters are the pipeline's."""
    for key in options:
        if key != "name":
            raise unknown_name("pipeline option", key, ["name"])

    def decorate(fn: Callable[..., Any]) -> Pipeline:
        return Pipeline(fn, name=options.get("name"))

    return decorate if fn is None else decorate(fn)


def _describe(parameter: inspect.Parameter) -> str:
    if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
        return f"positional-only parameter {parameter.name!r}"
    stars = "*" if parameter.kind is inspect.Parameter.VAR_POSITIONAL else "**"
    return f"parameter '{stars}{parameter.name}'"


def _free_name(graph: Graph, base: str) -> str:
    name, count = base, 1
    while name in graph.nodes:
        count += 1
        name = f"{base}_{count}"
    return name


def _output_annotations(annotation: Any, count: int) -> tuple[Any, ...]:
    if count == 1:
        return (annotation,)
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple and len(args) == count and Ellipsis not in args:
        return args
    return (None,) * count


def _without_decorators(source: str) -> str:
    # Decorator options (retries, a timeout) change how a step runs, not what it computes,
    # so they must not change its hash, and with it every cache key downstream.
    try:
        tree = ast.parse(source)
    except SyntaxError:  # e.g. the source of a lambda is only part of a statement
        return source
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.FunctionDef) and first.decorator_list:
        return "".join(source.splitlines(keepends=True)[first.lineno - 1 :])
    return source


def _code_bytes(code: types.CodeType) -> bytes:
    parts = [code.co_code, repr(code.co_names).encode()]
    parts.extend(_const_bytes(const) for const in code.co_consts)
    return b"\0".join(parts)


def _const_bytes(const: Any) -> bytes:
    # Nested code objects and frozensets have no stable repr (addresses, hash order).
    if isinstance(const, types.CodeType):
        return _code_bytes(const)
    if isinstance(const, frozenset):
        return b"{" + b",".join(sorted(_const_bytes(item) for item in const)) + b"}"
    if isinstance(const, tuple):
        return b"(" + b",".join(_const_bytes(item) for item in const) + b")"
    return repr(const).encode()
