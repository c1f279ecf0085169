"""Reference profiles: built by the SDK at registration, checked and stored by the registry, served by the API."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from shipyard.access.caller import Caller
from shipyard.client import Client
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import reference, training
from shipyard.monitoring.profile import Profile
from shipyard.registry import models
from shipyard.registry.models import VersionDraft
from shipyard.runtime import Platform
from tests.conftest import TEAM, held_blob


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, LogisticRegression]:
    features, labels = load_iris(return_X_y=True, as_frame=True)
    return features, LogisticRegression(max_iter=500).fit(features, labels)


def test_columns_are_named_as_windows_name_features(iris: tuple[pd.DataFrame, LogisticRegression]) -> None:
    features, model = iris
    named = training.training_frame(model, features)
    assert list(named.columns) == [*features.columns, "prediction"]
    assert named["prediction"].tolist() == model.predict(features).tolist()
    array = training.training_frame(LogisticRegression(max_iter=500).fit(features.to_numpy(), model.predict(features)),
                                    features.to_numpy())  # fmt: skip
    assert list(array.columns) == ["feature_0", "feature_1", "feature_2", "feature_3", "prediction"]
    assert list(training.training_frame(object(), features.to_numpy()[:, 0]).columns) == ["feature_0"]  # no predict


def test_big_data_is_sampled_the_same_way_every_time(iris: tuple[pd.DataFrame, LogisticRegression]) -> None:
    features, model = iris
    first = training.training_frame(model, features, max_rows=40)
    again = training.training_frame(model, features, max_rows=40)
    assert len(first) == 40
    pd.testing.assert_frame_equal(first, again)
    sampled = training.sample_rows(features, 40)
    assert sampled.index.is_monotonic_increasing
    assert training.training_profile(model, features, max_rows=40) == training.training_profile(model, features, max_rows=40)


def test_a_column_named_prediction_is_refused(iris: tuple[pd.DataFrame, LogisticRegression]) -> None:
    features, model = iris
    with pytest.raises(InvalidInput, match="rename the column, or pass profile=False"):
        training.training_frame(model, features.rename(columns={"petal width (cm)": "prediction"}))


def test_profiles_are_loaded_once_and_bad_blobs_refused(
    platform: Platform, iris: tuple[pd.DataFrame, LogisticRegression]
) -> None:
    features, model = iris
    profile = training.training_profile(model, features)
    digest = platform.artifacts.put_bytes(orjson.dumps(profile.to_dict())).digest
    loaded = reference.load_profile(platform.artifacts, TEAM, digest)
    assert loaded == profile
    assert reference.load_profile(platform.artifacts, TEAM, digest) is loaded  # cached by digest
    garbage = platform.artifacts.put_bytes(b"not json").digest
    with pytest.raises(InvalidInput, match="is not a reference profile"):
        reference.load_profile(platform.artifacts, TEAM, garbage)
    with pytest.raises(NotFound):
        reference.load_profile(platform.artifacts, TEAM, "0" * 64)


def register(platform: Platform, profile_digest: str | None, data: bytes = b"model") -> int:
    with platform.db.session(write=True) as session:
        if not any(m.name == "iris" for m in models.list_in(session, Caller.system(), TEAM)):
            models.create(session, Caller.system(), TEAM, "iris")
    artifact = held_blob(platform, TEAM, data)
    with platform.db.session(write=True) as session:
        draft = VersionDraft(artifact_digest=artifact, format="onnx", profile_digest=profile_digest)
        return models.create_version(session, Caller.system(), platform.artifacts, TEAM, "iris", draft).version


def test_the_registry_keeps_a_checked_profile_digest(
    platform: Platform, teams: tuple[str, str], iris: tuple[pd.DataFrame, LogisticRegression]
) -> None:
    features, model = iris
    profile = training.training_profile(model, features)
    digest = held_blob(platform, TEAM, orjson.dumps(profile.to_dict()))
    with_profile = register(platform, digest)
    without = register(platform, None, b"model 2")
    with platform.db.session() as session:
        assert reference.profile_of(session, platform.artifacts, TEAM, "iris", with_profile) == profile
        assert reference.profile_of(session, platform.artifacts, TEAM, "iris", without) is None
        with pytest.raises(NotFound, match="has no version 9"):
            reference.profile_of(session, platform.artifacts, TEAM, "iris", 9)
    not_uploaded = platform.artifacts.put_bytes(orjson.dumps({**profile.to_dict(), "rows": 7})).digest
    with pytest.raises(InvalidInput, match="has not been uploaded to namespace 'team-a'"):
        register(platform, not_uploaded, b"model 3")
    with pytest.raises(InvalidInput, match="is not a reference profile"):
        register(platform, held_blob(platform, TEAM, b"{not json"), b"model 4")
    with pytest.raises(InvalidInput, match="profile schema_version"):
        register(platform, held_blob(platform, TEAM, b'{"schema_version": 99}'), b"model 5")


def test_register_model_uploads_the_profile_and_the_api_serves_it(
    client: Client, iris: tuple[pd.DataFrame, LogisticRegression]
) -> None:
    features, model = iris
    client.create_namespace(TEAM)
    version = client.register_model("iris", model, namespace=TEAM, training_data=features)
    assert version["profile_digest"]
    served = client.get_model_profile("iris", version["version"], namespace=TEAM)
    assert Profile.from_dict(served) == training.training_profile(model, features)
    assert [c["name"] for c in served["columns"]] == [*features.columns, "prediction"]
    assert served["columns"][-1]["kind"] == "numeric"

    bare = client.register_model("iris", model, namespace=TEAM, training_data=features, profile=False)
    assert bare["profile_digest"] is None
    with pytest.raises(NotFound, match=r"has no reference profile.*training_data="):
        client.get_model_profile("iris", bare["version"], namespace=TEAM)
    dated = features.assign(seen=pd.Timestamp("2024-01-01"))  # monitoring has no kind for datetimes
    numeric_only = make_pipeline(ColumnTransformer([("keep", "passthrough", list(features.columns))]), LogisticRegression())
    numeric_only.fit(dated, model.predict(features))
    skipped = client.register_model("iris", numeric_only, namespace=TEAM, training_data=dated, onnx=False)
    assert skipped["profile_digest"] is None
    assert "datetime" in skipped["tags"]["profile.skipped"]
