from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from shipyard.access.caller import Caller
from shipyard.errors import InvalidInput, NotVisible
from shipyard.runtime import Platform
from shipyard.tracking import experiments, runs, search
from shipyard.tracking.runs import Batch, MetricPoint
from tests.conftest import OTHER, TEAM, MakeCaller

SYSTEM = Caller.system()


@dataclass
class Spec:
    name: str
    status: str
    start_time: int
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


SPECS = [
    Spec("rf-1", "finished", 1_000, {"acc": 0.91, "loss": 0.3}, {"model": "rf", "learning rate": "0.1"}, {"team": "a"}),
    Spec("rf-2", "finished", 2_000, {"acc": 0.85}, {"model": "rf", "learning rate": "0.01"}, {"team": "b"}),
    Spec("lr-1", "failed", 3_000, {"acc": 0.70, "loss": 0.9}, {"model": "LR"}, {"team": "a"}),
    Spec("svm", "running", 4_000, {"loss": 0.5}, {"model": "svm"}, {}),
    Spec("bare", "finished", 5_000),
]


@dataclass
class World:
    ids: dict[str, str]
    experiment_id: str
    find: Callable[..., list[str]]


@pytest.fixture
def world(platform: Platform, teams: tuple[str, str]) -> World:
    ids: dict[str, str] = {}
    with platform.db.session(write=True) as session:
        experiment = experiments.create(session, SYSTEM, TEAM, "search")
        for spec in SPECS:
            run = runs.create(session, SYSTEM, TEAM, experiment.id, name=spec.name, start_time=spec.start_time)
            metrics = [MetricPoint(k, v) for k, v in spec.metrics.items()]
            runs.log_batch(session, SYSTEM, TEAM, run.id, Batch(metrics=metrics, params=spec.params, tags=spec.tags))
            runs.update(session, SYSTEM, TEAM, run.id, status=spec.status)
            ids[spec.name] = run.id
    names = {run_id: name for name, run_id in ids.items()}

    def find(filter: str | None = None, order_by: list[str] | None = None, **options: object) -> list[str]:
        with platform.db.session() as session:
            page = search.search(session, SYSTEM, TEAM, filter=filter, order_by=order_by, **options)  # type: ignore[arg-type]
        return [names.get(r.id, r.name) for r in page.runs]

    return World(ids, experiment.id, find)


def _names(predicate: Callable[[Spec], bool]) -> set[str]:
    return {s.name for s in SPECS if predicate(s)}


def test_no_filter_returns_every_run_newest_first(world: World) -> None:
    assert world.find() == [s.name for s in sorted(SPECS, key=lambda s: -s.start_time)]
    assert world.find("   ") == world.find()


METRIC_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def test_metric_operators(world: World) -> None:
    for op, check in METRIC_OPERATORS.items():
        wanted = {s.name for s in SPECS if "acc" in s.metrics and check(s.metrics["acc"], 0.85)}
        assert set(world.find(f"metrics.acc {op} 0.85")) == wanted, op


def test_text_operators_on_params_and_tags(world: World) -> None:
    assert set(world.find("params.model = 'rf'")) == _names(lambda s: s.params.get("model") == "rf")
    assert set(world.find("params.model != 'rf'")) == _names(lambda s: "model" in s.params and s.params["model"] != "rf")
    assert set(world.find("params.model LIKE 's%'")) == {"svm"}
    assert set(world.find("params.model like 'L%'")) == {"lr-1"}
    assert set(world.find("params.model ILIKE 'l%'")) == {"lr-1"}
    assert set(world.find('tags.team = "a"')) == _names(lambda s: s.tags.get("team") == "a")
    assert set(world.find("tag.team > 'a'")) == {"rf-2"}


def test_quoted_keys_and_escaped_values(world: World) -> None:
    wanted = _names(lambda s: s.params.get("learning rate") == "0.1")
    assert set(world.find("params.`learning rate` = '0.1'")) == wanted
    assert set(world.find("params.\"learning rate\" = '0.1'")) == wanted
    assert set(world.find("params.`learning rate` = 0.1")) == wanted
    assert world.find("params.model = 'r\\'f'") == []


def test_clauses_combine_with_and(world: World) -> None:
    found = world.find("metrics.acc > 0.8 AND params.model = 'rf' and tags.team = 'a'")
    assert found == ["rf-1"]
    assert world.find("metrics.acc>0.8 and metrics.loss<0.5") == ["rf-1"]


def test_attributes(world: World) -> None:
    assert set(world.find("attributes.status = 'finished'")) == _names(lambda s: s.status == "finished")
    assert set(world.find("run.name LIKE 'rf-%'")) == {"rf-1", "rf-2"}
    assert set(world.find("attributes.start_time >= 3000")) == _names(lambda s: s.start_time >= 3000)
    assert world.find(f"attributes.run_id = '{world.ids['svm']}'") == ["svm"]
    assert set(world.find(f"attr.experiment_id = '{world.experiment_id}'")) == _names(lambda s: True)
    assert set(world.find("attributes.end_time > 0")) == _names(lambda s: s.status != "running")


FILTER_ERRORS = [
    ("metric.acc", "ends early"),
    ("metrics.acc > 0.5 and", "ends with 'and'"),
    ("metrics.acc > 0.5 or params.a = 'b'", "cannot parse"),
    ("metrics.acc > 0.5 params.a = 'b'", "expected 'and'"),
    ("models.acc > 0.5", "not a searchable entity"),
    ("attributes.colour = 'red'", "attribute 'colour' is unknown"),
    ("metrics.acc > 'high'", "compare with a number"),
    ("metrics.acc LIKE 0.5", "cannot use LIKE"),
    ("attributes.start_time > 'noon'", "time in milliseconds"),
    ("attributes.status = 1", "compare it with a quoted string"),
    ("0.5 < metrics.acc", "is not of the form"),
    ("params.model = rf", "cannot parse"),
]


def test_filter_errors_say_what_is_expected(world: World) -> None:
    for text, message in FILTER_ERRORS:
        with pytest.raises(InvalidInput, match=message):
            world.find(text)


def test_order_by_metric_with_missing_values_last(world: World) -> None:
    with_acc = sorted((s for s in SPECS if "acc" in s.metrics), key=lambda s: s.metrics["acc"])
    without = [s.name for s in sorted(SPECS, key=lambda s: -s.start_time) if "acc" not in s.metrics]
    assert world.find(order_by=["metrics.acc"]) == [s.name for s in with_acc] + without
    assert world.find(order_by=["metrics.acc DESC"]) == [s.name for s in reversed(with_acc)] + without
    assert world.find(order_by=["metrics.acc asc"]) == [s.name for s in with_acc] + without


def test_order_by_param_and_attribute(world: World) -> None:
    with_model = sorted((s for s in SPECS if "model" in s.params), key=lambda s: (s.params["model"], s.start_time), reverse=True)
    assert world.find(order_by=["params.model DESC"]) == [s.name for s in with_model] + ["bare"]
    assert world.find(order_by=["start_time"]) == [s.name for s in sorted(SPECS, key=lambda s: s.start_time)]
    by_status = sorted(SPECS, key=lambda s: (s.status, -s.start_time))
    assert world.find(order_by=["attributes.status"]) == [s.name for s in by_status]
    with pytest.raises(InvalidInput, match="unknown"):
        world.find(order_by=["colour"])


def test_pagination_visits_every_run_once(platform: Platform, world: World) -> None:
    with platform.db.session(write=True) as session:
        for index in range(18):
            run = runs.create(session, SYSTEM, TEAM, world.experiment_id, name=f"extra-{index}", start_time=2_500)
            runs.log_batch(session, SYSTEM, TEAM, run.id, Batch(metrics=[MetricPoint("acc", index % 4)]))
    for order_by in ([], ["metrics.acc DESC"], ["params.model"]):
        with platform.db.session() as session:
            everything = [r.id for r in search.search(session, SYSTEM, TEAM, order_by=order_by, max_results=1000).runs]
            seen: list[str] = []
            token = None
            pages = 0
            while True:
                page = search.search(session, SYSTEM, TEAM, order_by=order_by, max_results=4, page_token=token)
                assert len(page.runs) <= 4
                seen.extend(r.id for r in page.runs)
                pages += 1
                token = page.next_page_token
                if token is None:
                    break
        assert len(everything) == len(SPECS) + 18
        assert seen == everything
        assert pages == -(-len(everything) // 4)


def test_bad_page_tokens_and_limits(platform: Platform, world: World) -> None:
    for token in ("not-base64!", search.encode_page_token(-1), "eyJ4IjogMX0="):
        with pytest.raises(InvalidInput, match="page token"):
            world.find(page_token=token)
    for limit in (0, search.MAX_RESULTS + 1):
        with pytest.raises(InvalidInput, match="max_results"):
            world.find(max_results=limit)


def test_deleted_runs_and_experiment_filter(platform: Platform, world: World) -> None:
    with platform.db.session(write=True) as session:
        runs.update(session, SYSTEM, TEAM, world.ids["svm"], lifecycle_stage="deleted")
        other = experiments.create(session, SYSTEM, TEAM, "other")
        extra = runs.create(session, SYSTEM, TEAM, other.id, name="extra")
    assert "svm" not in world.find()
    assert "svm" in world.find(include_deleted=True)
    with platform.db.session() as session:
        found = search.search(session, SYSTEM, TEAM, experiment_ids=[other.id]).runs
    assert [r.id for r in found] == [extra.id]


def test_search_is_confined_to_its_namespace(platform: Platform, world: World, make_caller: MakeCaller) -> None:
    with platform.db.session(write=True) as session:
        theirs = experiments.create(session, SYSTEM, OTHER, "search")
        runs.create(session, SYSTEM, OTHER, theirs.id, name="rf-1")
    member = make_caller({TEAM: "viewer"})
    with platform.db.session() as session:
        mine = search.search(session, member, TEAM, filter="attributes.name = 'rf-1'").runs
        assert [r.id for r in mine] == [world.ids["rf-1"]]
        assert search.search(session, member, TEAM, experiment_ids=[theirs.id]).runs == []
        with pytest.raises(NotVisible):
            search.search(session, member, OTHER)
