"""The benchmark's statistics (scripts/bench.py): paired ratios, alternating order, the table.

The benchmarks themselves are timed runs of minutes and are not part of the suite; what is
tested here is the arithmetic that turns timings into the ratios the README quotes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH_PATH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("seqkit_bench", BENCH_PATH)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class body is built.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_paired_ratio_cancels_drift_that_the_ratio_of_medians_does_not(bench):
    # seqkit is exactly 1.25x faster in every round, while the machine slows down round by
    # round; the medians of the two sides come from different rounds when the order is skewed.
    slowdown = [1.0, 1.0, 1.0, 2.0, 2.0]
    timings = bench.Timings(
        seqkit=[0.8 * f for f in slowdown], reference=[1.0 * f for f in [1.0, 1.0, 2.0, 2.0, 2.0]]
    )
    assert timings.speedup == pytest.approx(1.25)
    assert timings.reference_median / timings.seqkit_median == pytest.approx(2.5)

    even = bench.Timings(seqkit=[0.8 * f for f in slowdown], reference=slowdown)
    assert even.speedup == pytest.approx(1.25)


def test_row_reports_the_paired_ratio_and_falls_back_to_the_medians(bench):
    timings = bench.Timings(seqkit=[1.0, 2.0, 4.0], reference=[1.5, 2.0, 4.4])
    row = bench.Row.throughput("x", 100, timings, "items/s", target=1.2)
    assert row.seqkit == pytest.approx(50.0)
    assert row.reference == pytest.approx(100 / 2.0)
    assert row.ratio == pytest.approx(1.1)  # median of 1.5, 1.0, 1.1
    assert row.verdict == "BELOW TARGET"
    assert bench.Row("y", 30.0, 20.0, "items/s").ratio == pytest.approx(1.5)


def test_interleaved_timings_alternate_the_order_and_count_the_warmup_apart(bench):
    calls: list[str] = []

    def side(name: str, seconds: float):
        def run() -> float:
            calls.append(name)
            return seconds

        return run

    timings = bench.interleaved_timings(side("s", 1.0), side("r", 2.0), repeats=4, warmup=1)
    assert calls == ["s", "r", "s", "r", "r", "s", "s", "r", "r", "s"]
    assert timings.seqkit == [1.0] * 4 and timings.reference == [2.0] * 4
    assert timings.speedup == 2.0


def test_markdown_table_shows_the_ratio_and_verdict(bench):
    row = bench.Row.throughput(
        "demo", 10, bench.Timings([1.0], [2.0]), "tokens/s", target=1.5, note="n"
    )
    table = bench.markdown_table([row])
    assert "| demo | 10 | 5 | tokens/s | 2.00× | ≥ 1.50 | ok |" in table
    assert "- demo: n" in table
