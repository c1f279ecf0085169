from __future__ import annotations

from shipyard import monitoring


def test_all_is_sorted_unique_and_importable() -> None:
    assert monitoring.__all__ == sorted(set(monitoring.__all__))
    for name in monitoring.__all__:
        assert getattr(monitoring, name) is not None, name
