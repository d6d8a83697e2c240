"""Descriptor budgets: the scheduled probes' share, /probe's, and what is left for HTTP."""

from __future__ import annotations

import pytest

from exporter.support.limits import FdBudget, budget


@pytest.mark.parametrize(
    ("nofile", "probes", "adhoc", "http"),
    [
        (65536, 1024, 256, 1024),  # the limit the exporter asks for: every cap in full
        (4096, 992, 256, 1024),  # scheduled probes get a quarter of the usable descriptors at most
        (1024, 224, 224, 448),
        (256, 32, 32, 64),  # tests/hostile runs the exporter with this limit
    ],
)
def test_budget_splits_the_descriptors(nofile: int, probes: int, adhoc: int, http: int) -> None:
    got = budget(nofile)
    assert got == FdBudget(nofile=nofile, probes=probes, adhoc=adhoc, http=http)
    assert got.probes + got.adhoc + got.http <= nofile - 128  # the reserve stays free
