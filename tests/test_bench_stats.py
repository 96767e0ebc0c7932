"""The benchmark's pure helpers (bench/stats.py). The benchmark itself is not part of the tests."""

import math

from django.test import SimpleTestCase

from bench.stats import from_json, json_safe, most_within, percentile, summarize_latencies


class PercentileTests(SimpleTestCase):
    def test_nearest_rank(self):
        values = list(range(1, 101))
        self.assertEqual(percentile(values, 0.5), 50)
        self.assertEqual(percentile(values, 0.99), 99)
        self.assertEqual(percentile(values, 1.0), 100)
        self.assertIsNone(percentile([], 0.5))


class SummaryTests(SimpleTestCase):
    def test_all_delivered(self):
        summary = summarize_latencies([0.001] * 99 + [0.010], expected=100, late_after=30)
        self.assertEqual(summary["lost"], 0)
        self.assertAlmostEqual(summary["p50_ms"], 1.0)
        self.assertAlmostEqual(summary["p99_ms"], 1.0)
        self.assertAlmostEqual(summary["max_ms"], 10.0)

    def test_missing_and_late_deliveries_are_lost_and_infinitely_late(self):
        # 95 on time, 3 too late, 2 never came: 5 % lost, so p99 is beyond the window.
        summary = summarize_latencies([0.002] * 95 + [31.0] * 3, expected=100, late_after=30)
        self.assertEqual(summary["lost"], 5)
        self.assertAlmostEqual(summary["loss"], 0.05)
        self.assertAlmostEqual(summary["p50_ms"], 2.0)
        self.assertTrue(math.isinf(summary["p99_ms"]))

    def test_infinity_survives_json(self):
        document = {"p99_ms": math.inf, "list": [1, math.inf]}
        self.assertEqual(from_json(json_safe(document)), document)


class BunchingTests(SimpleTestCase):
    def test_the_most_moments_within_a_span(self):
        self.assertEqual(most_within([1.0] * 100, 0.05), 100)  # a hundred refusals at once
        spread = [i * 0.25 for i in range(100)]  # one every 250 ms, one at a time
        self.assertEqual(most_within(spread, 1.0), 5)  # both ends of the second count
        self.assertEqual(most_within([0.0, 0.01, 0.2, 0.21, 0.22], 0.05), 3)
        self.assertEqual(most_within([], 0.05), 0)
