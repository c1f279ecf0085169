from __future__ import annotations

import collections
import io
import logging
import os
import sys
import tarfile
import tempfile
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import skops.io
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from shipyard.errors import InvalidInput, UntrustedModel
from shipyard.pipelines import materializers
from shipyard.pipelines.materializers import Materializer, Registry


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Registry:
    """A fresh registry without the environment's plugins, and loads unpacked under tmp_path."""
    fresh = Registry(entry_point_group=None)
    monkeypatch.setattr(materializers, "_registry", fresh)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return fresh


def round_trip(value: Any, name: str | None = None) -> tuple[Any, str, bytes]:
    data, used, _ = materializers.dump(value, name)
    return materializers.load(data, used), used, data


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "count": [1, 2, 3],
            "score": [0.5, np.nan, 2.25],
            "label": ["a", None, "c"],
            "ok": [True, False, True],
            "when": pd.to_datetime(["2024-01-01", "2024-06-30", "2025-01-01"]),
            "kind": pd.Categorical(["x", "y", "x"]),
        },
        index=pd.Index([10, 20, 30], name="id"),
    )


def training_data() -> tuple[np.ndarray, np.ndarray]:
    features = np.random.default_rng(0).normal(size=(60, 4))
    return features, (features[:, 0] + features[:, 1] > 0).astype(int)


def make_tree(root: Path) -> Path:
    (root / "model" / "weights").mkdir(parents=True)
    (root / "model" / "empty").mkdir()
    (root / "model" / "config.json").write_text('{"layers": 2}')
    (root / "model" / "weights" / "part-0.bin").write_bytes(bytes(range(256)) * 10)
    run = root / "model" / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o755)
    (root / "model" / "latest").symlink_to("weights/part-0.bin")
    return root / "model"


# --- round trips ---------------------------------------------------------------------------


def test_dataframe_round_trip_keeps_dtypes_and_named_index() -> None:
    loaded, name, _ = round_trip(frame())
    assert name == "pandas.parquet"
    pd.testing.assert_frame_equal(loaded, frame())


def test_default_index_is_not_stored() -> None:
    data, _, description = materializers.dump(frame().reset_index(drop=True))
    parquet = pq.read_table(io.BytesIO(data))
    assert parquet.column_names == ["count", "score", "label", "ok", "when", "kind"]
    assert description["index"] is None
    loaded = materializers.load(data, "pandas.parquet")
    assert isinstance(loaded.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(loaded, frame().reset_index(drop=True))
    # A RangeIndex that does not start at 0 is information, so it is kept.
    shifted = pd.DataFrame({"a": [1, 2]}, index=pd.RangeIndex(5, 7))
    pd.testing.assert_frame_equal(round_trip(shifted)[0], shifted, check_index_type=False)


@pytest.mark.parametrize("array", [np.linspace(0, 1, 12).reshape(3, 4), np.arange(12, dtype=np.int32).reshape(4, 3)])
def test_ndarray_round_trip(array: np.ndarray) -> None:
    loaded, name, _ = round_trip(array)
    assert name == "numpy.npy"
    assert loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize(
    "model",
    [LogisticRegression(C=0.5), Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])],
    ids=["logistic", "pipeline"],
)
def test_sklearn_model_predicts_the_same_after_load(model: Any) -> None:
    features, labels = training_data()
    model.fit(features, labels)
    loaded, name, _ = round_trip(model)
    assert name == "sklearn.skops"
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict_proba(features), model.predict_proba(features))


def test_folder_round_trip_keeps_content_modes_and_inner_links(tmp_path: Path) -> None:
    folder = make_tree(tmp_path / "src")
    loaded, name, _ = round_trip(folder)
    assert name == "path.tar"
    assert loaded.name == "model"
    assert loaded.parent.name.startswith("shipyard-artifact-")
    assert loaded.parent.parent == Path(tempfile.gettempdir())
    files = sorted(p.relative_to(loaded).as_posix() for p in loaded.rglob("*"))
    assert files == ["config.json", "empty", "latest", "run.sh", "weights", "weights/part-0.bin"]
    assert (loaded / "weights" / "part-0.bin").read_bytes() == (folder / "weights" / "part-0.bin").read_bytes()
    assert os.readlink(loaded / "latest") == "weights/part-0.bin"
    assert (loaded / "run.sh").stat().st_mode & 0o777 == 0o755


def test_single_file_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "report.csv"
    source.write_text("a,b\n1,2\n")
    loaded, _, _ = round_trip(source)
    assert loaded.is_file()
    assert loaded.name == "report.csv"
    assert loaded.read_text() == "a,b\n1,2\n"


def test_nested_json_round_trip() -> None:
    point = collections.namedtuple("point", "x y")
    value = {"metrics": {"auc": 0.91, "n": np.int64(120)}, "tags": ["a", ("b", None)], "where": point(1, 2), "ok": True}
    loaded, name, _ = round_trip(value)
    assert name == "json"
    # Tuples come back as lists and numpy scalars as Python numbers: JSON has only those.
    assert loaded == {"metrics": {"auc": 0.91, "n": 120}, "tags": ["a", ["b", None]], "where": [1, 2], "ok": True}


# --- determinism: equal values, equal bytes --------------------------------------------------


def test_parquet_bytes_are_identical_for_equal_frames() -> None:
    first, _, _ = materializers.dump(frame())
    assert materializers.dump(frame().copy(deep=True))[0] == first
    changed = frame()
    changed.loc[20, "count"] = 99
    assert materializers.dump(changed)[0] != first
    metadata = pq.read_metadata(io.BytesIO(first))
    assert set(metadata.metadata) == {b"pandas", b"ARROW:schema"}  # nothing time-based rides along


def test_npy_bytes_are_identical_for_equal_arrays() -> None:
    array = np.arange(12, dtype=np.float64).reshape(3, 4)
    first, _, _ = materializers.dump(array)
    assert materializers.dump(array.copy())[0] == first
    # A Fortran-ordered copy is the same value, so it gives the same bytes.
    assert materializers.dump(np.asfortranarray(array))[0] == first
    assert materializers.dump(array + 1)[0] != first


def test_skops_bytes_are_identical_for_equal_models() -> None:
    features, labels = training_data()

    def fitted(c: float) -> Pipeline:
        return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=c))]).fit(features, labels)

    first, _, _ = materializers.dump(fitted(1.0))
    # skops itself names entries by id() and stamps them with the clock; ours must not vary.
    assert materializers.dump(fitted(1.0))[0] == first
    assert materializers.dump(materializers.load(first, "sklearn.skops"))[0] == first
    assert materializers.dump(fitted(0.1))[0] != first


def test_tar_bytes_are_identical_for_equal_trees(tmp_path: Path) -> None:
    one = make_tree(tmp_path / "one")
    two = make_tree(tmp_path / "two")
    os.utime(two / "config.json", (1_000_000, 1_000_000))  # times differ; content and modes do not
    first, _, _ = materializers.dump(one)
    assert materializers.dump(two)[0] == first
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    (two / "config.json").write_text('{"layers": 3}')
    assert materializers.dump(two)[0] != first


def test_json_bytes_are_identical_for_equal_values() -> None:
    first, _, _ = materializers.dump({"b": 1, "a": [1.5, "x"]})
    assert first == b'{"a":[1.5,"x"],"b":1}'
    assert materializers.dump({"a": (1.5, "x"), "b": 1})[0] == first
    assert materializers.dump({"a": [1.5, "y"], "b": 1})[0] != first


# --- refusals ---------------------------------------------------------------------------------


def test_object_arrays_are_refused() -> None:
    with pytest.raises(InvalidInput, match="holds Python objects"):
        materializers.dump(np.array([{"a": 1}, None], dtype=object))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), np.float32("-inf")])
def test_non_finite_numbers_are_refused_in_json(bad: Any) -> None:
    with pytest.raises(InvalidInput, match=r"value\['metrics'\]\[1\] is .*no NaN or infinity"):
        materializers.dump({"metrics": [1.0, bad]})


def test_unknown_type_is_refused_with_a_way_forward() -> None:
    class Foo:
        pass

    with pytest.raises(InvalidInput) as caught:
        materializers.dump(Foo())
    assert str(caught.value) == (
        f"step output of type {__name__}.test_unknown_type_is_refused_with_a_way_forward.<locals>.Foo has no materializer: "
        "return a DataFrame, ndarray, scikit-learn model, Path, or JSON-able value, "
        "or register one with shipyard.pipelines.materializers.register(...)"
    )


def test_almost_json_says_what_is_wrong() -> None:
    with pytest.raises(InvalidInput, match=r"type dict has no materializer \(value\['ids'\] is a set\)"):
        materializers.dump({"ids": {1, 2}})
    with pytest.raises(InvalidInput, match="JSON keys must be strings"):
        materializers.dump({1: "one"})


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"no materializer is named 'polars\.parquet': known are json, numpy\.npy, "):
        materializers.load(b"", "polars.parquet")


def test_forced_name_must_handle_the_value() -> None:
    with pytest.raises(InvalidInput, match=r"'numpy\.npy' does not handle step output of type dict"):
        materializers.dump({"a": 1}, "numpy.npy")


def test_untrusted_types_in_a_skops_file_are_refused() -> None:
    class Majority(ClassifierMixin, BaseEstimator):
        def fit(self, features: Any, labels: Any) -> Majority:
            self.label_ = 1
            return self

    with pytest.raises(UntrustedModel):
        materializers.load(skops.io.dumps(Majority().fit(None, None)), "sklearn.skops")


def test_garbage_bytes_are_refused() -> None:
    for name in ("pandas.parquet", "numpy.npy", "sklearn.skops", "path.tar", "json"):
        with pytest.raises(InvalidInput, match=f"not a valid {name} artifact"):
            materializers.load(b"\x80not what it claims", name)


def crafted_tar(*members: tarfile.TarInfo) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return out.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ((entry("model", tarfile.DIRTYPE), entry("model/../../evil")), "has the entry 'model/../../evil'"),
        ((entry("/etc/evil"),), "has the entry '/etc/evil'"),
        ((entry("model", tarfile.DIRTYPE), entry("other/file")), "expected paths under 'model'"),
        ((entry("model", tarfile.DIRTYPE), entry("model/up", tarfile.SYMTYPE, "../../etc/passwd")), "links 'model/up'"),
        ((entry("model", tarfile.DIRTYPE), entry("model/abs", tarfile.SYMTYPE, "/etc/passwd")), "links 'model/abs'"),
        ((entry("model", tarfile.DIRTYPE), entry("model/hard", tarfile.LNKTYPE, "etc/passwd")), "hard-links"),
        ((entry("model", tarfile.DIRTYPE), entry("model/dev", tarfile.CHRTYPE)), "not a file, folder or link"),
    ],
)
def test_tars_that_escape_are_refused_before_anything_is_written(members: tuple[tarfile.TarInfo, ...], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        materializers.load(crafted_tar(*members), "path.tar")
    assert os.listdir(tempfile.gettempdir()) == []


def test_links_out_of_a_folder_are_refused_on_dump(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "leak").symlink_to("../secret")
    with pytest.raises(InvalidInput, match="outside the folder"):
        materializers.dump(folder)
    with pytest.raises(InvalidInput, match="does not exist"):
        materializers.dump(tmp_path / "missing")


# --- plugins --------------------------------------------------------------------------------


class UpperText(Materializer):
    """Stores strings upper-cased; stands in for a plugin."""

    name = "test.upper"
    media_type = "text/plain"

    def handles(self, value: Any) -> bool:
        return isinstance(value, str)

    def dump(self, value: Any) -> bytes:
        return str(value).upper().encode()

    def load(self, data: bytes) -> Any:
        return data.decode()


def test_registered_plugin_takes_precedence_over_builtins() -> None:
    assert materializers.for_value("hello").name == "json"
    assert materializers.register(UpperText) is UpperText  # usable as a class decorator
    assert round_trip("hello") == ("HELLO", "test.upper", b"HELLO")
    assert materializers.for_value(["not", "a", "str"]).name == "json"


def test_plugin_registered_last_comes_after_builtins(registry: Registry) -> None:
    materializers.register(UpperText(), first=False)
    assert materializers.for_value("hello").name == "json"
    assert materializers.dump("hello", "test.upper")[:2] == (b"HELLO", "test.upper")
    assert registry.names()[-1] == "test.upper"


def test_registering_a_name_again_replaces_it() -> None:
    class LoudJson(UpperText):
        name = "json"

    materializers.register(LoudJson)
    assert materializers.by_name("json").__class__ is LoudJson
    assert materializers.dump("hi")[:2] == (b"HI", "json")


def test_invalid_plugins_are_refused() -> None:
    with pytest.raises(InvalidInput, match="expected a Materializer subclass"):
        materializers.register(dict)  # type: ignore[type-var]

    class Nameless(UpperText):
        name = ""

    with pytest.raises(InvalidInput, match="has no name"):
        materializers.register(Nameless)


def test_plugin_by_dotted_path_keeps_the_path_as_its_name() -> None:
    path = f"{__name__}:UpperText"
    data, name, description = materializers.dump("hello", path)
    assert (data, name, description) == (b"HELLO", path, {"type": "str"})
    assert materializers.load(data, name) == "HELLO"
    assert materializers.for_value("hello").name == "json"  # naming a class does not register it


@pytest.mark.parametrize(
    ("path", "message"),
    [("no_such_module_xyz:Thing", "cannot import"), (f"{__name__}:Missing", "cannot import"), ("os.path:join", "expected a")],
)
def test_bad_dotted_paths_are_refused(path: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        materializers.by_name(path)


def test_entry_point_plugins_are_found_lazily_and_broken_ones_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A real installed distribution: a dist-info folder and a module on sys.path.
    site = tmp_path / "site"
    dist_info = site / "shipyard_fraction_plugin-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: shipyard-fraction-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[shipyard.materializers]\n"
        "fraction.text = shipyard_fraction_plugin:FractionText\n"
        "broken.plugin = shipyard_no_such_module:Nothing\n"
    )
    (site / "shipyard_fraction_plugin.py").write_text(
        textwrap.dedent(
            """
            from fractions import Fraction
            from shipyard.pipelines.materializers import Materializer

            class FractionText(Materializer):
                name = "fraction.text"
                media_type = "text/plain"

                def handles(self, value):
                    return isinstance(value, Fraction)

                def dump(self, value):
                    return str(value).encode()

                def load(self, data):
                    return Fraction(data.decode())
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "shipyard_fraction_plugin", raising=False)
    monkeypatch.setattr(materializers, "_registry", Registry())

    assert "shipyard_fraction_plugin" not in sys.modules  # nothing is imported before the first lookup
    with caplog.at_level(logging.WARNING, logger="shipyard.pipelines"):
        assert round_trip(Fraction(3, 4)) == (Fraction(3, 4), "fraction.text", b"3/4")
    assert "shipyard_fraction_plugin" in sys.modules
    assert "'broken.plugin'" in caplog.text
    assert "shipyard_no_such_module" in caplog.text
    with pytest.raises(InvalidInput, match=r"plugin 'broken\.plugin' failed to load: ModuleNotFoundError"):
        materializers.by_name("broken.plugin")
    assert materializers.dump(frame())[1] == "pandas.parquet"  # the built-ins still work


# --- descriptions ---------------------------------------------------------------------------


def test_describe_gives_small_facts_for_lineage(tmp_path: Path) -> None:
    assert materializers.dump(frame())[2] == {
        "rows": 3,
        "columns": 6,
        "dtypes": {
            "count": "int64",
            "score": "float64",
            "label": "str",
            "ok": "bool",
            "when": "datetime64[us]",
            "kind": "category",
        },
        "index": ["id"],
    }
    assert materializers.dump(np.zeros((2, 3), dtype=np.float32))[2] == {"shape": [2, 3], "dtype": "float32", "bytes": 24}
    features, labels = training_data()
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    assert materializers.dump(pipeline)[2] == {
        "class": "Pipeline",
        "module": "sklearn.pipeline",
        "fitted": False,
        "steps": [["scale", "StandardScaler"], ["clf", "LogisticRegression"]],
    }
    assert materializers.dump(LogisticRegression().fit(features, labels))[2]["fitted"] is True
    folder = make_tree(tmp_path)
    assert materializers.dump(folder)[2] == {"kind": "directory", "name": "model", "files": 3, "bytes": 2560 + 13 + 18}
    assert materializers.dump({"b": 1, "a": 2})[2] == {"type": "dict", "length": 2, "keys": ["a", "b"]}
    assert materializers.dump([1, 2, 3])[2] == {"type": "list", "length": 3}
    assert materializers.dump(0.93)[2] == {"type": "float", "value": 0.93}


def test_a_tar_that_fails_to_unpack_leaves_no_folder_behind(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(50_000))
    data, name, _ = materializers.dump(tmp_path / "big.bin")
    with pytest.raises(InvalidInput, match=r"not a valid path\.tar artifact"):
        materializers.load(data[: len(data) // 2], name)
    # Passes the checks, then fails while unpacking: a file where a folder should be.
    with pytest.raises(NotADirectoryError):
        materializers.load(crafted_tar(entry("model"), entry("model/inner")), "path.tar")
    assert os.listdir(tempfile.gettempdir()) == []
