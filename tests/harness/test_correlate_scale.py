"""The correlate-scale bench runs end to end at a toy size and reports what it says."""

from __future__ import annotations

from baton.harness.correlate_scale import catalogue, correlate_scale, probe_batches


def test_bench_reports_cost_per_size_and_the_ratio():
    seen = []
    result = correlate_scale((4,), seed=3, progress=lambda d, t: seen.append((d, t)), rounds=1)
    (row,) = result["sizes"]
    assert row["open_incidents"] == 4 and row["alerts"] == len(probe_batches(1, 3)[0])
    assert row["cpu_ms_per_alert"] > 0 and row["wall_ms_per_alert"] > 0
    assert result["cost_ratio_largest_vs_smallest"] == 1.0
    assert result["catalogue_services"] == len(catalogue(4)) and seen == [(1, 1)]
