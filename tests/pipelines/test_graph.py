from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidPipeline, NotFound
from shipyard.pipelines import Graph, Node, Output, pipeline, step

if TYPE_CHECKING:
    from collections.abc import Sequence


@step
def load(path: str = "data.csv") -> pd.DataFrame:
    return pd.DataFrame({"x": [1.0, 2.0], "y": [2.0, 4.0]})


@step
def clean(data: pd.DataFrame) -> pd.DataFrame:
    return data.dropna()


@step(outputs=("features", "names"))
def features(data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    return data.to_numpy(), list(data.columns)


@step(retries=1, resources={"memory": "1Gi"})
def train(data: pd.DataFrame, features: np.ndarray, epochs: int = 5) -> dict[str, float]:
    return {"w": float(features.sum()) / len(data), "epochs": float(epochs)}


@step
def evaluate(model: dict[str, float], threshold: float = 0.5) -> float:
    return model["w"]


@pipeline
def diamond(path: str, epochs: int = 5) -> None:
    data = load(path)
    table, _names = features(data)
    model = train(clean(data), table, epochs=epochs)
    evaluate(model)


@step
def anything(value: Any) -> object:
    return value


@step
def count(value: float) -> int:
    return int(value)


@step
def unresolved(value: Sequence[int]) -> int:  # only imported for type checkers: never checked
    return len(value)


def hand(*nodes: Node, name: str = "hand") -> Graph:
    return Graph(pipeline=name, nodes={node.name: node for node in nodes})


def test_a_diamond_orders_by_data_then_by_call() -> None:
    graph = diamond.build(path="s3://bucket/data.csv")
    assert list(graph.nodes) == ["load", "features", "clean", "train", "evaluate"]
    assert graph.order() == ["load", "features", "clean", "train", "evaluate"]
    assert graph.nodes["train"].upstream == {"clean", "features"}
    assert graph.nodes["features"].outputs == ("features", "names")
    assert graph.upstream("train") == {"load", "clean", "features"}
    assert graph.upstream("load") == set()
    assert graph.downstream("load") == {"clean", "features", "train", "evaluate"}
    assert graph.downstream("evaluate") == set()
    with pytest.raises(NotFound, match="pipeline 'diamond' has no step 'trian': expected one of load, features, clean"):
        graph.upstream("trian")


def test_order_is_stable_by_call_order_among_ready_nodes() -> None:
    graph = hand(
        Node("c", clean, {"data": Output("b")}),
        Node("a", load),
        Node("b", load),
        Node("d", clean, {"data": Output("a")}),
    )
    assert graph.order() == ["a", "b", "c", "d"]  # c was called first, but needs b


def test_ready_lists_what_can_start_now() -> None:
    graph = diamond.build(path="x")
    assert graph.ready(set(), set()) == ["load"]
    assert graph.ready(set(), {"load"}) == []
    assert graph.ready({"load"}, {"load"}) == ["features", "clean"]
    assert graph.ready({"load", "clean"}, {"load", "clean", "features"}) == []
    assert graph.ready({"load", "clean", "features"}, {"load", "clean", "features"}) == ["train"]
    assert graph.ready(set(graph.nodes), set(graph.nodes)) == []


def test_to_dict_is_json() -> None:
    graph = diamond.build(path="data.csv", epochs=3)
    data = graph.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["pipeline"] == "diamond"
    assert data["params"] == {"path": "data.csv", "epochs": 3}
    node = data["nodes"][3]
    assert node == {
        "name": "train",
        "step": "train",
        "module": __name__,
        "qualname": "train",
        "code_hash": train.code_hash,
        "inputs": {"data": {"node": "clean", "output": "output"}, "features": {"node": "features", "output": "features"}},
        "params": {"epochs": 3},
        "options": train.options.to_dict(),
    }
    assert node["options"]["resources"] == {"cpu": 1.0, "memory_mb": 1024, "gpu": 0.0}


def test_nodes_keep_their_own_copies() -> None:
    params = {"path": "a"}
    node = Node("load", load, params=params)
    params["path"] = "b"
    assert node.params == {"path": "a"}


def _message(graph: Graph) -> str:
    with pytest.raises(InvalidPipeline) as caught:
        graph.validate()
    return caught.value.message


def test_an_empty_graph_is_invalid() -> None:
    @pipeline
    def nothing() -> None:
        pass

    with pytest.raises(InvalidPipeline, match="pipeline 'nothing' has no steps: expected the pipeline function to call at least"):
        nothing.build()


def test_cycles_name_their_steps() -> None:
    graph = hand(
        Node("load", load),
        Node("a", clean, {"data": Output("c")}),
        Node("b", clean, {"data": Output("a")}),
        Node("c", clean, {"data": Output("b")}),
        Node("after", clean, {"data": Output("c")}),
    )
    assert _message(graph) == "pipeline 'hand' has a cycle: a -> b -> c -> a"
    with pytest.raises(InvalidPipeline, match="has a cycle"):
        graph.order()
    assert _message(hand(Node("self", clean, {"data": Output("self")}))) == "pipeline 'hand' has a cycle: self -> self"


def test_inputs_must_name_real_steps_and_outputs() -> None:
    unknown_step = hand(Node("load", load), Node("clean", clean, {"data": Output("laod")}))
    expected = "step 'clean' reads 'data' from 'laod', which is not a step of pipeline 'hand': expected one of load, clean"
    assert _message(unknown_step) == expected
    graph = hand(
        Node("train", train, {"data": Output("load"), "features": Output("load")}),
        Node("evaluate", evaluate, {"model": Output("train", "model")}),
        Node("load", load),
    )
    assert _message(graph) == "step 'evaluate' reads output 'model' of 'train', which has outputs: output"


def test_missing_and_unknown_arguments() -> None:
    expected = "step 'clean' is missing its argument 'data': it is neither an input nor a parameter"
    assert _message(hand(Node("clean", clean))) == expected
    graph = hand(Node("load", load, params={"pth": "x"}))
    assert _message(graph) == "unknown argument 'pth' for step 'load': expected one of path; did you mean 'path'?"
    both = hand(Node("load", load), Node("clean", clean, {"data": Output("load")}, {"data": 1}))
    assert _message(both) == "step 'clean' gets argument 'data' both as an output of 'load' and as a value"
    not_json = hand(Node("load", load, params={"path": b"raw"}))
    assert _message(not_json).startswith("step 'load' argument 'path' expects an output or a JSON value")
    moved = Graph("hand", nodes={"other": Node("load", load)})
    assert _message(moved) == "pipeline 'hand' keeps step 'load' under the name 'other'"


def test_type_mismatches_name_both_steps() -> None:
    inputs = {"data": Output("load", annotation=np.ndarray), "features": Output("load")}
    wrong = hand(Node("load", load), Node("train", train, inputs))
    assert _message(wrong) == "step 'train' takes 'data' as DataFrame but 'load' gives ndarray"

    @pipeline
    def swapped() -> None:
        table, _ = features(load())
        train(table, table)

    with pytest.raises(InvalidPipeline) as caught:
        swapped.build()
    assert caught.value.message == "step 'train' takes 'data' as DataFrame but 'features' gives ndarray as 'features'"


class Frame(pd.DataFrame):
    pass


@pytest.mark.parametrize(
    ("given", "consumer", "arg"),
    [
        (Frame, clean, "data"),  # a subclass
        (int, count, "value"),  # an int where a float is expected
        (float, anything, "value"),  # Any
        (list[int], clean, "data"),  # generics are not checked
        ("DataFrame", clean, "data"),  # nor strings
        (str, unresolved, "value"),  # nor annotations that cannot be resolved
        (None, count, "value"),  # nor outputs without an annotation
    ],
)
def test_compatible_or_uncheckable_types_pass(given: Any, consumer: Any, arg: str) -> None:
    hand(Node("load", load), Node("use", consumer, {arg: Output("load", annotation=given)})).validate()


def test_string_annotations_are_resolved_where_they_can_be() -> None:
    assert count.hints == {"value": float, "return": int}
    assert unresolved.hints == {}


def test_add_refuses_a_second_node_with_the_same_name() -> None:
    graph = hand(Node("load", load))
    with pytest.raises(InvalidPipeline, match="pipeline 'hand' already has a step named 'load'"):
        graph.add(Node("load", load))
