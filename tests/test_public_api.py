from __future__ import annotations

import importlib
import inspect

import pytest

import shipyard
from shipyard import errors


def test_all_is_sorted_and_unique() -> None:
    assert shipyard.__all__ == sorted(shipyard.__all__)
    assert len(set(shipyard.__all__)) == len(shipyard.__all__)


def test_every_public_name_is_importable() -> None:
    module = importlib.import_module("shipyard")
    for name in shipyard.__all__:
        assert getattr(module, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from shipyard import *", namespace)  # noqa: S102 - checks the star import itself
    assert set(shipyard.__all__) <= set(namespace)


def test_every_public_exception_is_exported() -> None:
    public = {cls.__name__ for cls in errors.ERRORS_BY_CODE.values()} | {"ClientError"}
    assert public <= set(shipyard.__all__)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (shipyard.NotFound, LookupError),
        (shipyard.InvalidInput, ValueError),
        (shipyard.PayloadTooLarge, ValueError),
        (shipyard.PermissionDenied, PermissionError),
        (errors.NotVisible, LookupError),
    ],
)
def test_errors_subclass_what_callers_already_catch(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, builtin)
    assert issubclass(error, shipyard.ShipyardError)


def test_the_tree_matches_the_docstring() -> None:
    assert issubclass(shipyard.AlreadyExists, shipyard.Conflict)
    assert issubclass(shipyard.ImmutableValue, shipyard.Conflict)
    assert issubclass(shipyard.PayloadTooLarge, shipyard.InvalidInput)
    assert issubclass(errors.NotVisible, shipyard.NotFound)
    for name, cls in inspect.getmembers(errors, inspect.isclass):
        if cls.__module__ == errors.__name__ and cls is not shipyard.ShipyardError:
            assert issubclass(cls, shipyard.ShipyardError), name
            assert f"+-- {name}" in (errors.__doc__ or ""), name


def test_codes_are_unique_and_round_trip() -> None:
    assert len(set(errors.ERRORS_BY_CODE)) == len(errors.ERRORS_BY_CODE)
    for code, cls in errors.ERRORS_BY_CODE.items():
        error = cls("something went wrong", details={"field": "x"})
        assert error.to_dict() == {"error": code, "message": "something went wrong", "details": {"field": "x"}}
        assert str(error) == "something went wrong"
    assert shipyard.NotFound("gone").to_dict() == {"error": "not_found", "message": "gone"}


def test_status_codes() -> None:
    expected = {
        shipyard.InvalidInput: 400,
        shipyard.Unauthenticated: 401,
        shipyard.PermissionDenied: 403,
        shipyard.NotFound: 404,
        shipyard.Conflict: 409,
        shipyard.PayloadTooLarge: 413,
        shipyard.UntrustedModel: 422,
        shipyard.IntegrityFailure: 500,
    }
    for cls, status in expected.items():
        assert cls.status_code == status, cls
    assert shipyard.ClientError("x", status_code=418).http_status == 418
