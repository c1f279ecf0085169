"""Shared gateway fixtures: two trained versions behind a fake control plane."""

from __future__ import annotations

from typing import Any

import pytest

from tests.serving.gateway.fakes import FakeControlPlane, breast_cancer_models

NS = "team-a"


@pytest.fixture(scope="module")
def trained() -> tuple[Any, Any, Any]:
    return breast_cancer_models()


@pytest.fixture
def control(trained: tuple[Any, Any, Any]) -> FakeControlPlane:
    """Versions 1 and 2 of ``clf`` in ``team-a``, with endpoint ``ep`` serving version 1."""
    x, first, second = trained
    fake = FakeControlPlane()
    fake.add_model(NS, "clf", 1, first, x)
    fake.add_model(NS, "clf", 2, second, x)
    fake.deploy(NS, "ep", [("clf", 1, 100)])
    return fake
