"""Model formats (flavors): how a model becomes bytes and comes back.

- ``sklearn``: scikit-learn estimators through skops. The types allowed on load come
  from this module (every scikit-learn estimator plus a few known-safe internals), never
  from the artifact, so a crafted file cannot widen what gets constructed.
- ``onnx``: an ONNX graph, loaded into an onnxruntime session.
- ``pickle``: refused on save and load unless the caller passes ``trust_pickle=True``.

``load_for_serving`` wraps a loaded model in a ``Predictor``, preferring a version's ONNX export.
"""

from __future__ import annotations

import functools
import io
import pickle
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, UntrustedModel

if TYPE_CHECKING:
    from shipyard.registry.predictor import Predictor

SKLEARN = "sklearn"
ONNX = "onnx"
PICKLE = "pickle"
FORMATS = (SKLEARN, ONNX, PICKLE)

FILE_NAMES = {SKLEARN: "model.skops", ONNX: "model.onnx", PICKLE: "model.pkl"}

# Internals that fitted estimators hold and skops does not trust by default.
_SAFE_INTERNALS = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._gb_losses.BinomialDeviance",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.utils._bunch.Bunch",
    "numpy.dtype",
    "numpy.random._pcg64.PCG64",
    "numpy.random._mt19937.MT19937",
    "numpy.random.mtrand.RandomState",
    "collections.OrderedDict",
    "builtins.slice",
)


@functools.cache
def trusted_sklearn_types() -> tuple[str, ...]:
    from sklearn.utils import all_estimators

    estimators = [f"{cls.__module__}.{cls.__qualname__}" for _, cls in all_estimators()]
    return tuple(sorted(set(estimators) | set(_SAFE_INTERNALS)))


def detect_format(model: Any) -> str:
    """Name the format a live model object is saved in."""
    module = type(model).__module__
    if module.startswith("onnx") and type(model).__name__ == "ModelProto":
        return ONNX
    if module.startswith("sklearn") or (hasattr(model, "get_params") and hasattr(model, "fit")):
        return SKLEARN
    raise InvalidInput(
        f"cannot tell how to save a {type(model).__module__}.{type(model).__name__}: "
        "pass a scikit-learn estimator, an onnx.ModelProto, or format='pickle' with trust_pickle=True"
    )


def dump_model(model: Any, fmt: str | None = None, *, trust_pickle: bool = False) -> tuple[bytes, str]:
    """Serialise ``model``; returns the bytes and the format used."""
    fmt = fmt or detect_format(model)
    if fmt == SKLEARN:
        import skops.io

        return skops.io.dumps(model), fmt
    if fmt == ONNX:
        return model.SerializeToString(), fmt
    if fmt == PICKLE:
        _require_trust(trust_pickle)
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), fmt
    raise InvalidInput(f"model format {fmt!r} is unknown: expected one of {', '.join(FORMATS)}")


def load_model(data: bytes, fmt: str, *, trust_pickle: bool = False) -> Any:
    """Rebuild a model from bytes. ONNX models come back as an onnxruntime session."""
    if fmt == SKLEARN:
        import skops.io
        from skops.io.exceptions import UntrustedTypesFoundException

        try:
            return skops.io.load(io.BytesIO(data), trusted=list(trusted_sklearn_types()))
        except UntrustedTypesFoundException as exc:
            raise UntrustedModel(
                f"the skops file holds types Shipyard does not trust ({exc}): only scikit-learn "
                "estimators and their known internals load; convert the model to ONNX instead"
            ) from exc
    if fmt == ONNX:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    if fmt == PICKLE:
        _require_trust(trust_pickle)
        return pickle.loads(data)  # noqa: S301 - guarded by an explicit trust flag
    raise InvalidInput(f"model format {fmt!r} is unknown: expected one of {', '.join(FORMATS)}")


def load_for_serving(data_main: bytes, fmt: str, onnx_data: bytes | None = None, *, trust_pickle: bool = False) -> Predictor:
    """A predictor for a version: onnxruntime when an ONNX file is at hand, the model itself otherwise."""
    from shipyard.registry.predictor import OnnxPredictor, SklearnPredictor

    if onnx_data is not None:
        return OnnxPredictor(load_model(onnx_data, ONNX))
    model = load_model(data_main, fmt, trust_pickle=trust_pickle)
    return OnnxPredictor(model) if fmt == ONNX else SklearnPredictor(model)


def _require_trust(trust_pickle: bool) -> None:
    if not trust_pickle:
        raise UntrustedModel(
            "pickle models can run arbitrary code when loaded and are refused by default: "
            "use skops or ONNX, or pass trust_pickle=True if you trust the source"
        )
