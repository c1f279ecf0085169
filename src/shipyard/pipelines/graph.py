"""The graph a pipeline function builds: nodes (step calls) joined by the outputs they read.

Pure data and checks; nothing here runs a step. ``validate()`` is what makes a bad
pipeline fail before anything runs; runners then walk the graph with ``order()`` or,
when they run steps side by side, ``ready()``.
"""

from __future__ import annotations

import heapq
import inspect
import math
import typing
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidPipeline, NotFound
from shipyard.pipelines.options import for_step, got, unknown_name

if TYPE_CHECKING:
    from shipyard.pipelines.dsl import Step

JSON_VALUES = "str, int, float, bool, None, or lists and dicts of those"
# PEP 484's numeric tower: an int is acceptable where a float is expected.
_WIDENS_TO: dict[type, tuple[type, ...]] = {float: (int,), complex: (int, float)}


@dataclass(frozen=True)
class Output:
    """A placeholder for one output of a node; passing it to another step makes an edge."""

    node: str
    name: str = "output"
    annotation: Any = None

    def __bool__(self) -> bool:
        # Branching on an output while tracing would silently take one path for every run.
        raise InvalidPipeline(
            f"output {self.name!r} of step {self.node!r} has no value while the pipeline is being built: "
            "expected the decision inside a step, got a condition on the output in the pipeline function"
        )


@dataclass(frozen=True)
class Node:
    """One call of a step: outputs it reads (``inputs``) and literal arguments (``params``)."""

    name: str
    step: Step
    inputs: Mapping[str, Output] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Own copies, so the caller's dicts changing later cannot change the graph.
        object.__setattr__(self, "inputs", dict(self.inputs))
        object.__setattr__(self, "params", dict(self.params))

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.step.options.outputs

    @property
    def upstream(self) -> set[str]:
        return {output.node for output in self.inputs.values()}

    def to_dict(self) -> dict[str, Any]:
        fn = self.step.fn
        return {
            "name": self.name,
            "step": self.step.name,
            "module": fn.__module__,
            "qualname": fn.__qualname__,
            "code_hash": self.step.code_hash,
            "inputs": {arg: {"node": output.node, "output": output.name} for arg, output in self.inputs.items()},
            "params": dict(self.params),
            "options": self.step.options.to_dict(),
        }


@dataclass
class Graph:
    """The nodes of one pipeline build, in call order, with the parameters it was built with."""

    pipeline: str
    params: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)

    def add(self, node: Node) -> Node:
        if node.name in self.nodes:
            raise InvalidPipeline(f"pipeline {self.pipeline!r} already has a step named {node.name!r}")
        self.nodes[node.name] = node
        return node

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise NotFound(
                f"pipeline {self.pipeline!r} has no step {name!r}: expected one of {', '.join(self.nodes) or '(none)'}"
            ) from None

    def order(self) -> list[str]:
        """Every node after the nodes it reads from; among ready nodes, call order wins."""
        position = {name: index for index, name in enumerate(self.nodes)}
        waiting = {name: node.upstream & position.keys() for name, node in self.nodes.items()}
        readers: dict[str, list[str]] = {name: [] for name in self.nodes}
        for name, upstream in waiting.items():
            for source in upstream:
                readers[source].append(name)
        heap = [position[name] for name, upstream in waiting.items() if not upstream]
        heapq.heapify(heap)
        names, ordered = list(self.nodes), []
        while heap:
            name = names[heapq.heappop(heap)]
            ordered.append(name)
            for reader in readers[name]:
                waiting[reader].discard(name)
                if not waiting[reader]:
                    heapq.heappush(heap, position[reader])
        if len(ordered) < len(names):
            raise InvalidPipeline(f"pipeline {self.pipeline!r} has a cycle: {' -> '.join(self._cycle(waiting, position))}")
        return ordered

    def _cycle(self, waiting: dict[str, set[str]], position: dict[str, int]) -> list[str]:
        # Every node left waits on another node left, so walking upstream must come back round.
        name = min((name for name, upstream in waiting.items() if upstream), key=position.__getitem__)
        path: list[str] = []
        while name not in path:
            path.append(name)
            name = min(waiting[name], key=position.__getitem__)
        loop = path[path.index(name) :][::-1]  # walked against the data flow; turn it round
        start = loop.index(min(loop, key=position.__getitem__))  # from the step called first
        loop = loop[start:] + loop[:start]
        return [*loop, loop[0]]

    def upstream(self, name: str) -> set[str]:
        """Every node ``name`` depends on, directly or through others."""
        return self._reach(name, lambda node: node.upstream)

    def downstream(self, name: str) -> set[str]:
        """Every node that depends on ``name``, directly or through others."""
        readers: dict[str, set[str]] = {key: set() for key in self.nodes}
        for node in self.nodes.values():
            for source in node.upstream & readers.keys():
                readers[source].add(node.name)
        return self._reach(name, lambda node: readers[node.name])

    def _reach(self, name: str, neighbours: typing.Callable[[Node], set[str]]) -> set[str]:
        seen: set[str] = set()
        stack = list(neighbours(self.node(name)))
        while stack:
            current = stack.pop()
            if current in seen or current not in self.nodes:
                continue
            seen.add(current)
            stack.extend(neighbours(self.nodes[current]))
        return seen

    def ready(self, done: Set[str], started: Set[str]) -> list[str]:
        """Nodes not yet started whose inputs are all done, in call order."""
        return [name for name, node in self.nodes.items() if name not in done and name not in started and node.upstream <= done]

    def validate(self) -> None:
        """Raise InvalidPipeline, naming the step, for anything that would fail once running."""
        if not self.nodes:
            raise InvalidPipeline(
                f"pipeline {self.pipeline!r} has no steps: expected the pipeline function to call at least one step"
            )
        for key, node in self.nodes.items():
            if key != node.name:
                raise InvalidPipeline(f"pipeline {self.pipeline!r} keeps step {node.name!r} under the name {key!r}")
            self._check_node(node)
        self.order()

    def _check_node(self, node: Node) -> None:
        parameters = node.step.signature.parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        named = [name for name, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        for arg in [*node.inputs, *node.params]:
            if arg not in named and not takes_any:
                raise unknown_name("argument", arg, named, for_step(node.name))
        for arg, output in node.inputs.items():
            if arg in node.params:
                raise InvalidPipeline(
                    f"step {node.name!r} gets argument {arg!r} both as an output of {output.node!r} and as a value"
                )
            self._check_input(node, arg, output)
        for arg, value in node.params.items():
            problem = json_problem(value)
            if problem:
                expected = f"expects an output or a JSON value ({JSON_VALUES})"
                raise InvalidPipeline(f"step {node.name!r} argument {arg!r} {expected}, got {problem}")
        for arg in named:
            if parameters[arg].default is inspect.Parameter.empty and arg not in node.inputs and arg not in node.params:
                raise InvalidPipeline(
                    f"step {node.name!r} is missing its argument {arg!r}: it is neither an input nor a parameter"
                )

    def _check_input(self, node: Node, arg: str, output: Output) -> None:
        source = self.nodes.get(output.node)
        if source is None:
            raise InvalidPipeline(
                f"step {node.name!r} reads {arg!r} from {output.node!r}, which is not a step of pipeline {self.pipeline!r}: "
                f"expected one of {', '.join(self.nodes)}"
            )
        if output.name not in source.outputs:
            has = ", ".join(source.outputs)
            raise InvalidPipeline(f"step {node.name!r} reads output {output.name!r} of {output.node!r}, which has outputs: {has}")
        given: Any = output.annotation
        wanted: Any = node.step.hints.get(arg)
        if _mismatch(given, wanted):
            which = "" if output.name == "output" else f" as {output.name!r}"
            raise InvalidPipeline(
                f"step {node.name!r} takes {arg!r} as {wanted.__name__} but {output.node!r} gives {given.__name__}{which}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "params": dict(self.params), "nodes": [node.to_dict() for node in self.nodes.values()]}


def _plain_class(annotation: Any) -> bool:
    return isinstance(annotation, type) and typing.get_origin(annotation) is None and annotation is not typing.Any


def _mismatch(given: Any, wanted: Any) -> bool:
    """True only when both are plain classes that cannot match; generics, strings and Any pass."""
    if not (_plain_class(given) and _plain_class(wanted)) or given in _WIDENS_TO.get(wanted, ()):
        return False
    try:
        return not issubclass(given, wanted)
    except TypeError:  # protocols that are not runtime-checkable, odd metaclasses
        return False


def json_problem(value: Any, where: str = "") -> str | None:
    """None when ``value`` is plain JSON, else what is wrong with it and where."""
    at = f" at {where}" if where else ""
    if isinstance(value, Output):
        return f"an output of step {value.node!r}{at}: expected outputs passed directly as arguments, not inside a list or dict"
    if value is None or isinstance(value, str | int | bool):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{got(value)}{at}"
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = json_problem(item, f"{where}[{index}]")
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"the key {got(key)}{at}: expected str keys"
            problem = json_problem(item, f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    return f"{got(value)}{at}"
