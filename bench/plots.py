"""PNG plots of one run: fan-out latency distributions and msg/s bars (matplotlib, no display)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .targets import fmt_ms  # noqa: E402

COLORS = {"ours": "#1f77b4", "bare": "#2ca02c", "channels-core": "#d62728", "channels-pubsub": "#ff7f0e"}


def _ok(document, scenario, server):
    return next((r for r in document["results"]
                 if r["scenario"] == scenario and r["server"] == server and r.get("status") == "ok"), None)


def fanout_latency(document, path):
    """One panel per fan-out scenario: the share of deliveries later than x (log-log), per server.

    The curve of a server that lost deliveries ends above zero: that is its loss."""
    scenarios = ("fanout-1", "fanout-2")
    figure, axes = plt.subplots(1, len(scenarios), figsize=(11, 4.2), sharey=True)
    for axis, scenario in zip(axes, scenarios):
        cfg = document["config"][scenario]
        for server in document["config"]["servers"]:
            record = _ok(document, scenario, server)
            if not record or not record.get("quantiles_ms"):
                continue
            delivered = record["delivered"] / record["expected"] if record["expected"] else 1
            # Share of expected deliveries later than each quantile; drawn down to 0.01 % (or the loss).
            points = [(max(ms, 0.01), max(1 - delivered * fraction, 1e-4)) for fraction, ms in record["quantiles_ms"]]
            axis.step([x for x, _ in points], [y for _, y in points], where="post",
                      label=f"{server} (p99 {fmt_ms(record['p99_ms'])})",
                      color=COLORS.get(server))
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(f"{cfg['subscribers']:,} subscribers, {cfg['rate']} msg/s")
        axis.set_xlabel("latency from publish to delivery (ms)")
        axis.grid(True, which="both", alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    axes[0].set_ylabel("share of deliveries later than x")
    figure.suptitle("Fan-out latency (lower and further left is better)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def throughput_bars(document, path):
    """Echo msg/s (64 B and 256 KiB) per server, and idle KB per connection."""
    panels = [("echo", "msgs_per_s", "echo 64 B: msg/s"), ("echo-large", "msgs_per_s", "echo 256 KiB: msg/s"),
              ("idle", "kb_per_connection", "idle: server KB per connection")]
    figure, axes = plt.subplots(1, len(panels), figsize=(12, 3.8))
    for axis, (scenario, metric, title) in zip(axes, panels):
        servers, values = [], []
        for server in document["config"]["servers"]:
            record = _ok(document, scenario, server)
            if record and record.get(metric) is not None:
                servers.append(server)
                values.append(record[metric])
        bars = axis.bar(servers, values, color=[COLORS.get(s) for s in servers])
        axis.bar_label(bars, labels=[f"{v:,.0f}" if v >= 100 else f"{v:.1f}" for v in values], fontsize=8)
        axis.set_title(title)
        axis.tick_params(axis="x", labelrotation=20, labelsize=8)
        axis.margins(y=0.15)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def draw_all(document, stem):
    """Write <stem>-fanout.png and <stem>-throughput.png; return their paths."""
    paths = [stem.with_name(stem.name + "-fanout.png"), stem.with_name(stem.name + "-throughput.png")]
    fanout_latency(document, paths[0])
    throughput_bars(document, paths[1])
    return paths
