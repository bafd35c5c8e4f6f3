"""Intervals and tests behind tables and the gate, against closed forms and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from arbench.results.record import MetricEntry
from arbench.results.statistics import Measured, decode_ids, difference, encode_ids, estimate


def test_records_round_trip_values_ids_and_replicates():
    values = np.random.default_rng(0).standard_normal(50)
    measured = Measured(float(values.mean()), values, np.arange(50), False, values[:10])
    back = MetricEntry(**measured.to_record(), direction="lower", unit="nats").measured()
    np.testing.assert_allclose(back.per_example, values, rtol=1e-6)
    assert back.paired is False and np.array_equal(back.ids, np.arange(50))
    np.testing.assert_allclose(back.replicates, values[:10], rtol=1e-6)
    assert encode_ids(np.arange(3, 9)) == "3:9"
    assert np.array_equal(decode_ids(encode_ids(np.array([4, 1, 7]))), [4, 1, 7])
    with pytest.raises(ValueError, match="1-D"):
        Measured.of_examples(np.zeros((4, 2)))  # one value per example, not per source


def test_the_interval_of_a_mean_matches_normal_theory():
    values = np.random.default_rng(1).normal(3.0, 2.0, 400)
    found = estimate([Measured.of_examples(values)])
    assert found.mean == pytest.approx(values.mean())
    expected = stats.norm.ppf(0.975) * values.std(ddof=1) / np.sqrt(400)
    assert found.half_width == pytest.approx(expected, rel=0.1)
    assert found.n == 400


def test_seeds_without_examples_get_a_student_t_interval():
    seeds = [Measured(v) for v in (10.0, 10.4, 9.9)]
    found = estimate(seeds)
    expected = stats.t.ppf(0.975, 2) * np.std([10.0, 10.4, 9.9], ddof=1) / np.sqrt(3)
    assert found.half_width == pytest.approx(expected)
    assert estimate([Measured(1.0)]).half_width is None


def test_paired_differences_use_wilcoxon_on_shared_examples():
    base = np.random.default_rng(2).normal(0, 3, 40)
    shifted = difference([Measured.of_examples(base)], [Measured.of_examples(base + 0.5)])
    assert shifted.test == "Wilcoxon signed-rank"
    assert shifted.mean == pytest.approx(0.5)
    assert shifted.p == pytest.approx(stats.wilcoxon((base + 0.5) - base).pvalue)
    assert shifted.p < 1e-6
    same = difference([Measured.of_examples(base)], [Measured.of_examples(base)])
    assert same.p == 1.0 and same.mean == 0.0
    # only examples both scored are paired: ids 10..39 of the second run
    later = Measured(float(base[10:].mean()), base[10:] + 1.0, np.arange(10, 40))
    assert difference([Measured.of_examples(base)], [later]).n == 30

