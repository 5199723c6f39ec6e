"""RateMeter arithmetic (no clock: times are given)."""

from __future__ import annotations

import pytest

from jinglefs.transfer.progress import RateMeter


def test_rate_and_eta() -> None:
    m = RateMeter(window=5.0)
    assert m.rate == 0.0 and m.eta(100) is None
    m.add(10.0, 0)
    assert m.rate == 0.0 and m.eta(100) is None
    m.add(11.0, 1000)
    assert m.rate == pytest.approx(1000.0)
    m.add(12.0, 3000)
    assert m.rate == pytest.approx(1500.0)  # (3000 - 0) / 2 s
    assert m.eta(6000) == pytest.approx(2.0)
    assert m.eta(3000) == 0.0


def test_window_slides() -> None:
    m = RateMeter(window=2.0)
    m.add(0.0, 0)
    m.add(1.0, 10_000)  # fast start
    m.add(2.0, 10_100)
    m.add(3.0, 10_200)
    m.add(4.0, 10_300)
    # samples older than 2 s before t=4 are gone: (2, 10100) .. (4, 10300)
    assert m.rate == pytest.approx(100.0)


def test_restart_and_same_time_samples() -> None:
    m = RateMeter()
    m.add(0.0, 0)
    m.add(1.0, 500)
    m.add(1.0, 700)  # same instant: replaces
    assert m.rate == pytest.approx(700.0)
    m.add(2.0, 100)  # went backwards (new attempt): history cleared
    assert m.rate == 0.0
    m.add(3.0, 400)
    assert m.rate == pytest.approx(300.0)
    with pytest.raises(ValueError):
        RateMeter(window=0)
