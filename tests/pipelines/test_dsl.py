from __future__ import annotations

import hashlib
import inspect
import pickle
import textwrap
import threading
from typing import Any

import pytest

from shipyard.errors import InvalidPipeline, ShipyardError, StepFailed
from shipyard.pipelines import Graph, Output, Pipeline, Step, StepOptions, pipeline, step
from shipyard.pipelines.dsl import REQUIRED


class Table(list[dict[str, Any]]):
    pass


class Model(dict[str, float]):
    pass


@step
def load(rows: int = 3) -> Table:
    return Table({"x": float(i), "y": 2.0 * i} for i in range(rows))


@step(retries=2, resources={"cpu": 2}, timeout_s=60)
def train(data: Table, lr: float = 0.1) -> Model:
    """Fit y = w * x."""
    return Model(w=sum(r["y"] for r in data) / max(sum(r["x"] for r in data), 1.0), lr=lr)


@step(outputs=("train", "test"))
def split(data: Table, share: float = 0.5) -> tuple[Table, Table]:
    cut = int(len(data) * share)
    return Table(data[:cut]), Table(data[cut:])


@step(name="score")
def evaluate(model: Model, data: Table) -> float:
    return sum(abs(model["w"] * r["x"] - r["y"]) for r in data)


@pipeline
def quickstart(rows: int, lr: float = 0.01) -> None:
    first, second = split(load(rows=rows))
    evaluate(train(first, lr=lr), second)


def test_decorator_forms() -> None:
    assert isinstance(load, Step)
    assert (load.name, load.options) == ("load", StepOptions())
    assert train.options.retries == 2
    assert train.options.timeout_s == 60.0
    assert train.options.resources.cpu == 2.0
    assert evaluate.name == "score"
    assert step(load.fn, cache=False).options.cache is False
    assert train.signature == inspect.signature(train.fn)
    assert train.__doc__ == "Fit y = w * x."
    assert train.__name__ == "train"


def test_step_rejections() -> None:
    def fit(data: Table) -> None: ...

    with pytest.raises(InvalidPipeline) as caught:
        step(retry=1)(fit)
    assert caught.value.message.startswith("unknown step option 'retry' for step 'fit': expected one of")
    assert caught.value.message.endswith("did you mean 'retries'?")
    with pytest.raises(InvalidPipeline, match=r"@step expects a function, got 'fit' \(str\); to name it use @step\(name='fit'\)"):
        step("fit")  # type: ignore[call-overload]
    with pytest.raises(InvalidPipeline, match=r"@step expects a plain \(not async\) function, got <class"):
        step(Table)

    async def fetch() -> None: ...

    with pytest.raises(InvalidPipeline, match="not async"):
        step(fetch)

    def many(*parts: int) -> None: ...

    with pytest.raises(InvalidPipeline, match=r"step 'many' has the parameter '\*parts': expected named parameters only"):
        step(many)

    def positional(a: int, /) -> None: ...

    with pytest.raises(InvalidPipeline, match="step 'positional' has the positional-only parameter 'a'"):
        step(positional)


def test_steps_outside_a_build_are_plain_functions() -> None:
    data = load(rows=4)
    assert isinstance(data, Table)
    assert len(data) == 4
    first, second = split(data)
    assert (len(first), len(second)) == (2, 2)
    assert evaluate(train(data), data) == 0.0


def test_pipeline_forms_and_parameters() -> None:
    assert isinstance(quickstart, Pipeline)
    assert quickstart.name == "quickstart"
    assert quickstart.parameters == {"rows": REQUIRED, "lr": 0.01}
    assert repr(REQUIRED) == "REQUIRED"

    @pipeline(name="nightly")
    def nightly() -> None:
        load()

    assert nightly.name == "nightly"
    with pytest.raises(InvalidPipeline, match=r"unknown pipeline option 'nme': expected one of name; did you mean 'name'\?"):
        pipeline(nme="x")
    with pytest.raises(InvalidPipeline, match=r"pipeline 'bad' parameter 'when' expects a JSON default .*, got \(1, 2\) \(tuple"):

        @pipeline
        def bad(when: tuple[int, int] = (1, 2)) -> None: ...

    with pytest.raises(InvalidPipeline, match=r"pipeline 'loose' has the parameter '\*\*extra': expected named parameters only"):

        @pipeline
        def loose(**extra: Any) -> None: ...


def test_build_traces_the_calls_into_a_graph() -> None:
    graph = quickstart.build(rows=10)
    assert isinstance(graph, Graph)
    assert (graph.pipeline, graph.params) == ("quickstart", {"rows": 10, "lr": 0.01})
    assert list(graph.nodes) == ["load", "split", "train", "score"]
    assert graph.nodes["load"].params == {"rows": 10}
    assert graph.nodes["split"].inputs == {"data": Output("load", "output", Table)}
    assert graph.nodes["split"].params == {"share": 0.5}  # defaults become literals
    assert graph.nodes["train"].inputs == {"data": Output("split", "train", Table)}
    assert graph.nodes["train"].params == {"lr": 0.01}
    assert graph.nodes["score"].inputs == {"model": Output("train", "output", Model), "data": Output("split", "test", Table)}
    assert graph.nodes["score"].step is evaluate


def test_build_checks_its_parameters() -> None:
    with pytest.raises(InvalidPipeline) as caught:
        quickstart.build()
    assert caught.value.message == "pipeline 'quickstart' is missing required parameters: rows; pass them as build(rows=...)"
    with pytest.raises(InvalidPipeline) as caught:
        quickstart.build(rows=1, row=0.1)
    expected = "unknown parameter 'row' for pipeline 'quickstart': expected one of lr, rows; did you mean 'rows'?"
    assert caught.value.message == expected
    with pytest.raises(InvalidPipeline, match=r"pipeline 'quickstart' parameter 'rows' expects a JSON value .*, got \{1, 2\}"):
        quickstart.build(rows={1, 2})


def test_repeated_steps_get_numbered_names() -> None:
    @step(name="load_2")
    def other() -> int:
        return 1

    @pipeline
    def ensemble() -> None:
        data = load()
        other()
        for lr in (0.1, 0.2, 0.3):
            train(data, lr=lr)
        load()

    graph = ensemble.build()
    assert list(graph.nodes) == ["load", "load_2", "train", "train_2", "train_3", "load_3"]
    assert [graph.nodes[n].params["lr"] for n in ("train", "train_2", "train_3")] == [0.1, 0.2, 0.3]


def test_multiple_outputs_unpack_with_their_annotations() -> None:
    @step(outputs=("low", "high"))
    def bounds(data: Table) -> tuple[float, float, float]:  # wrong length: annotations unknown
        return 0.0, 1.0, 2.0

    seen: dict[str, Any] = {}

    @pipeline
    def p() -> None:
        seen["split"] = split(load())
        seen["bounds"] = bounds(load())

    p.build()
    assert seen["split"] == (Output("split", "train", Table), Output("split", "test", Table))
    assert seen["bounds"] == (Output("bounds", "low", None), Output("bounds", "high", None))


def test_argument_binding_errors_name_the_step() -> None:
    @pipeline
    def missing() -> None:
        train(lr=0.1)

    with pytest.raises(InvalidPipeline) as caught:
        missing.build()
    assert caught.value.message == "step 'train' is missing its argument 'data': pass it as train(data=...)"

    @pipeline
    def typo() -> None:
        train(load(), lr_=0.1)

    with pytest.raises(InvalidPipeline) as caught:
        typo.build()
    assert caught.value.message == "unknown argument 'lr_' for step 'train': expected one of data, lr; did you mean 'lr'?"

    @pipeline
    def too_many() -> None:
        train(load(), 0.1, 7)

    with pytest.raises(InvalidPipeline, match=r"step 'train' cannot take these arguments \(too many positional arguments\)"):
        too_many.build()


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ((1, 2), r"\(1, 2\) \(tuple\)"),
        (object(), r"<object object at .*> \(object\)"),
        (float("inf"), r"inf \(float\)"),
        ({"a": [1, {2, 3}]}, r"\{2, 3\} \(set\) at \['a'\]\[1\]"),
        ({1: "a"}, r"the key 1 \(int\): expected str keys"),
    ],
)
def test_literals_must_be_json(value: object, got: str) -> None:
    @pipeline
    def p() -> None:
        train(load(), lr=value)

    expected = rf"^step 'train' argument 'lr' expects an output or a JSON value \(.*\), got {got}$"
    with pytest.raises(InvalidPipeline, match=expected):
        p.build()


def test_outputs_cannot_hide_in_literals_or_conditions() -> None:
    @step
    def combine(parts: list[Any]) -> None: ...

    @pipeline
    def fan_in() -> None:
        combine([load(), load()])

    with pytest.raises(InvalidPipeline, match=r"got an output of step 'load' at \[0\]: expected outputs passed directly"):
        fan_in.build()

    @pipeline
    def branch() -> None:
        if load():
            load()

    with pytest.raises(InvalidPipeline, match="output 'output' of step 'load' has no value while the pipeline is being built"):
        branch.build()


def test_literals_are_copied_into_the_graph() -> None:
    rows = {"n": [1, 2]}

    @step
    def take(spec: dict[str, Any]) -> None: ...

    @pipeline
    def p() -> None:
        take(rows)
        rows["n"].append(3)

    assert p.build().nodes["take"].params == {"spec": {"n": [1, 2]}}


def test_builds_do_not_leak_between_contexts() -> None:
    results: list[Any] = []

    @pipeline
    def outer() -> None:
        load()
        # A thread starts with a fresh context: the step runs for real there.
        thread = threading.Thread(target=lambda: results.append(load(rows=2)))
        thread.start()
        thread.join()
        results.append(quickstart.build(rows=1))  # a nested build has its own graph

    graph = outer.build()
    assert list(graph.nodes) == ["load"]
    assert len(results[0]) == 2
    assert list(results[1].nodes) == ["load", "split", "train", "score"]

    @pipeline
    def broken() -> None:
        load()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        broken.build()
    assert isinstance(load(), Table)  # the failed build left no context behind


def test_steps_and_pipelines_pickle_by_reference() -> None:
    # Our own bytes, unpickled straight back: exactly what a process pool does.
    assert pickle.loads(pickle.dumps(train)) is train  # noqa: S301
    assert pickle.loads(pickle.dumps(quickstart)) is quickstart  # noqa: S301
    assert pickle.loads(pickle.dumps(REQUIRED)) is REQUIRED  # noqa: S301
    graph = quickstart.build(rows=5)
    copied = pickle.loads(pickle.dumps(graph))  # noqa: S301
    assert copied.nodes["train"].step is train
    assert copied.to_dict() == graph.to_dict()


def test_steps_that_cannot_be_found_by_name_refuse_to_pickle() -> None:
    @step
    def local() -> None: ...

    with pytest.raises(InvalidPipeline, match=r"step 'local' cannot be sent to another process: expected .*<locals>\.local"):
        pickle.dumps(local)
    renamed = step(train.fn, retries=5)  # module attribute 'train' is another Step
    with pytest.raises(InvalidPipeline, match="step 'train' cannot be sent to another process"):
        pickle.dumps(renamed)


def _compile(source: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(source), "<notebook>", "exec"), namespace)  # noqa: S102 - a function with no source file
    return namespace["f"]


def test_code_hash_follows_the_source() -> None:
    def first(x: int) -> int:
        return x + 1

    def second(x: int) -> int:
        return x + 2

    assert step(first).code_hash != step(second).code_hash
    assert step(first).code_hash == step(first, retries=3, name="other").code_hash
    expected = hashlib.sha256(textwrap.dedent(inspect.getsource(train.fn)).split("\n", 1)[1].encode()).hexdigest()
    assert train.code_hash == expected  # the decorator line is not part of it
    assert len(train.code_hash) == 64


def test_code_hash_falls_back_to_bytecode() -> None:
    one = step(_compile("def f(x):\n    return x in {'a', 'b'}\n"))
    again = step(_compile("def f(x):\n    return x in {'a', 'b'}\n"))
    other = step(_compile("def f(x):\n    return x in {'a', 'c'}\n"))
    nested = step(_compile("def f(x):\n    return [y * 2 for y in x]\n"))
    nested_again = step(_compile("def f(x):\n    return [y * 2 for y in x]\n"))
    with pytest.raises(OSError, match="could not get source"):
        inspect.getsource(one.fn)
    assert one.code_hash == again.code_hash
    assert one.code_hash != other.code_hash
    assert nested.code_hash == nested_again.code_hash


def test_step_failed_carries_step_and_attempt() -> None:
    error = StepFailed("train raised ValueError", step="train", attempt=2)
    assert (error.step, error.attempt, error.message) == ("train", 2, "train raised ValueError")
    details = {"step": "train", "attempt": 2}
    assert error.to_dict() == {"error": "step_failed", "message": "train raised ValueError", "details": details}
    assert isinstance(error, ShipyardError)
    assert StepFailed.status_code == 500
    rebuilt = StepFailed(error.message, details=error.details)  # as the SDK re-raises it
    assert (rebuilt.step, rebuilt.attempt) == ("train", 2)
    assert (StepFailed("x").step, StepFailed("x").attempt, StepFailed("x").details) == (None, None, {})
