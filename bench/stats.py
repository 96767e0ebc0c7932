"""Pure helpers: latency summaries, CPU shares, bunching, JSON with infinity (tests/test_bench_stats.py)."""

import bisect
import math

# Where a latency distribution is sampled for the plots: finer in the tail, where servers differ.
QUANTILES = ([i / 100 for i in range(1, 90)] + [0.9 + i / 1000 for i in range(0, 100)]
             + [0.999 + i / 10000 for i in range(0, 10)] + [1.0])


def percentile(sorted_values, fraction):
    """The value below which `fraction` of the sorted values lie (nearest rank)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize_latencies(latencies, expected, late_after):
    """Latency statistics (ms) of one fan-out run.

    `latencies` are seconds from publish to delivery; `expected` is how many deliveries there
    should have been. A delivery later than `late_after` s, or none at all, is lost. p50/p99 are
    over every expected delivery, the lost ones counted as infinitely late: a run that lost more
    than 1 % has no finite p99 ("> late_after"), which is what its readers would see.
    """
    values = sorted(latencies)
    on_time = values[:bisect.bisect_right(values, late_after)]
    lost = max(0, expected - len(on_time))
    padded = on_time + [math.inf] * lost

    def ms(fraction):
        value = percentile(padded, fraction)
        return None if value is None else (value * 1000 if math.isfinite(value) else math.inf)

    return {
        "expected": expected,
        "delivered": len(values),
        "on_time": len(on_time),
        "lost": lost,
        "loss": lost / expected if expected else 0.0,
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "max_ms": (values[-1] * 1000) if values else None,
        "late_after_s": late_after,
        # The distribution of what was delivered, for the plots: [fraction, ms] pairs.
        "quantiles_ms": [[q, round(percentile(values, q) * 1000, 3)] for q in QUANTILES] if values else [],
    }


def cpu_share(cpu_seconds, wall_seconds):
    """CPU seconds over wall seconds: 1.0 is one core fully busy."""
    return cpu_seconds / wall_seconds if wall_seconds > 0 else 0.0


def most_within(moments, span):
    """The most of the sorted `moments` (seconds) that fall within any `span` s: how bunched they
    came (the abuse scenario's refusals: a hundred sockets refused at once, or one at a time)."""
    most, first = 0, 0
    for last, moment in enumerate(moments):
        while moment - moments[first] > span:
            first += 1
        most = max(most, last - first + 1)
    return most


def json_safe(value):
    """Infinity is not JSON: write it as the string "inf" (and read it back with `from_json`)."""
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def from_json(value):
    if value == "inf":
        return math.inf
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value
