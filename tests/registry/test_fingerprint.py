from __future__ import annotations

import numpy as np
import pandas as pd

from shipyard.registry.fingerprint import dataset_digest, describe_dataset


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})


def test_digest_is_stable_and_hex() -> None:
    digest = dataset_digest(_frame())
    assert digest == dataset_digest(_frame())
    assert len(digest) == 64
    int(digest, 16)


def test_any_change_to_a_frame_changes_the_digest() -> None:
    base = dataset_digest(_frame())
    changed_value = _frame()
    changed_value.loc[1, "x"] = 20
    renamed = _frame().rename(columns={"x": "z"})
    recast = _frame().astype({"x": "float64"})
    reordered = _frame().iloc[::-1]
    reindexed = _frame().set_axis([10, 11, 12])
    variants = [changed_value, renamed, recast, reordered, reindexed, _frame()[["y", "x"]], _frame().head(2)]
    digests = {dataset_digest(v) for v in variants}
    assert base not in digests
    assert len(digests) == len(variants)


def test_arrays_hash_by_dtype_shape_and_bytes() -> None:
    array = np.arange(6, dtype=np.int64)
    assert dataset_digest(array) == dataset_digest(array.tolist())
    assert dataset_digest(array) != dataset_digest(array.astype(np.int32))
    assert dataset_digest(array) != dataset_digest(array.reshape(2, 3))
    assert dataset_digest(np.asfortranarray(array.reshape(2, 3))) == dataset_digest(array.reshape(2, 3))
    objects = np.array(["a", None, 3], dtype=object)
    assert dataset_digest(objects) == dataset_digest(objects.copy())


def test_series_and_frames_differ() -> None:
    series = pd.Series([1, 2, 3], name="x")
    assert dataset_digest(series) == dataset_digest(series.copy())
    assert dataset_digest(series) != dataset_digest(series.astype("float64"))
    assert dataset_digest(series) != dataset_digest(series.to_frame())


def test_describe_dataset_records_name_digest_and_shape() -> None:
    frame = _frame()
    assert describe_dataset(frame, "train") == {"name": "train", "digest": dataset_digest(frame), "rows": 3, "columns": 2}
    vector = np.zeros(4)
    assert describe_dataset(vector, "labels") == {"name": "labels", "digest": dataset_digest(vector), "rows": 4}
    assert describe_dataset([1, 2], "plain") == {"name": "plain", "digest": dataset_digest([1, 2])}
