"""Turn one results file into tables, plots, PASS/MISS lines and docs/performance.md.

    .venv/bin/python -m bench.report bench/results/<date>.json [--docs]

Writes <date>.md and <date>-*.png next to the results file; with --docs also regenerates
docs/performance.md (the prose below, the numbers from the file, bench/FINDINGS.md verbatim).
"""

import argparse
import json
import sys
from pathlib import Path

from . import plots
from .config import FULL, LOADGEN_SATURATED, QUICK, SERVERS
from .scenarios import PUBLISHERS, WARM_UP_PROBES
from .stats import from_json
from .targets import evaluate, fmt_ms

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
FINDINGS = ROOT / "bench" / "FINDINGS.md"
WARN = " ⚠"  # the load generator used ≥ 90 % of its core while measuring this number


def load(path):
    return from_json(json.loads(Path(path).read_text()))


def record(document, scenario, server):
    return next((r for r in document["results"] if r["scenario"] == scenario and r["server"] == server), None)


def warn(part):
    return WARN if part and part.get("loadgen_cpu", 0) >= LOADGEN_SATURATED else ""


def failed(r):
    if r is None:
        return "–"
    return "skipped" if r.get("status") == "skipped" else "error"


def fmt_loss(r):
    if r["lost"] == 0:
        return "0 lost"
    return f"{r['loss']:.1%} lost (later than {r['late_after_s']:g} s)"


def main_table(document):
    cfg = document["config"]
    f1, f2, idle = cfg["fanout-1"], cfg["fanout-2"], cfg["idle"]
    lines = [f"| server | echo {cfg['echo']['size']} B msg/s | echo {cfg['echo-large']['size'] // 1024} KiB msg/s "
             f"| {f1['subscribers']:,} subscribers, {f1['rate']} msg/s: p50 / p99, loss "
             f"| {f2['subscribers']:,} subscribers, {f2['rate']} msg/s: p99, loss "
             f"| idle KB per connection ({idle['connections']:,}) |",
             "|---|---:|---:|---:|---:|---:|"]
    for server in cfg["servers"]:
        cells = [SERVERS[server]]
        for scenario in ("echo", "echo-large"):
            r = record(document, scenario, server)
            cells.append(f"{r['msgs_per_s']:,.0f}{warn(r)}" if r and r.get("status") == "ok" else failed(r))
        r = record(document, "fanout-1", server)
        cells.append(f"{fmt_ms(r['p50_ms'])} / {fmt_ms(r['p99_ms'])}, {fmt_loss(r)}{warn(r)}"
                     if r and r.get("status") == "ok" else failed(r))
        r = record(document, "fanout-2", server)
        cells.append(f"{fmt_ms(r['p99_ms'])}, {fmt_loss(r)}{warn(r)}" if r and r.get("status") == "ok" else failed(r))
        r = record(document, "idle", server)
        cells.append(f"{r['kb_per_connection']:.1f}" if r and r.get("status") == "ok" else failed(r))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


CROWDS = ("crowd-1", "crowd-2", "crowd-3")


def crowd_table(document):
    """n members join one room as fast as the load generator connects: joins/s, then the time until
    one message reached every member, then fan-out; no settle wait between them."""
    lines = ["| crowd | server | joins/s | one message to every member | then fan-out: p50 / p99, loss | problems |",
             "|---|---|---:|---:|---:|---|"]
    for scenario in CROWDS:
        cfg = document["config"].get(scenario)
        if not cfg:
            continue
        for server in document["config"]["servers"]:
            r = record(document, scenario, server)
            if r is None:
                continue
            label = f"{cfg['subscribers']:,} members, then {cfg['rate']} msg/s"
            if r.get("status") != "ok":
                lines.append(f"| {label} | {server} | {failed(r)} | | | {r.get('error', '')[:80]} |")
                continue
            f = r["fanout"]
            to_all = f"{r['one_message_to_all_s']:.2f} s" if r.get("one_message_to_all_s") is not None else \
                f"never ({r['one_message_received']:,} of {r['subscribers']:,})"
            lines.append(f"| {label} | {server} | {r['joins_per_s']:,.0f} | {to_all} "
                         f"| {fmt_ms(f['p50_ms'])} / {fmt_ms(f['p99_ms'])}, {fmt_loss(f)}{warn(f)} | {problems(r)} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def ours_table(document):
    cfg = document["config"]
    slow, scaling = record(document, "slow-consumer", "ours"), record(document, "scaling", "ours")
    s, k = cfg["slow-consumer"], cfg["scaling"]
    lines = ["| ours only | without | with | ratio |", "|---|---:|---:|---:|"]
    if slow and slow.get("status") == "ok":
        closed = slow.get("slow_client_close_code")
        note = f"closed by the server with {closed}" if closed else "not closed by the server"
        lines.append(f"| slow consumer ({s['subscribers']:,} subscribers, {s['rate']} msg/s): the others' p99; "
                     f"the slow client was {note} | {fmt_ms(slow['without']['p99_ms'])}{warn(slow['without'])} "
                     f"| {fmt_ms(slow['with']['p99_ms'])}{warn(slow['with'])} "
                     f"| {slow['with']['p99_ms'] / slow['without']['p99_ms']:.2f} × |")
    else:
        lines.append(f"| slow consumer | {failed(slow)} | | |")
    abuse, a = record(document, "abuse", "ours"), cfg.get("abuse")
    if abuse and abuse.get("status") == "ok":
        abuser, held = abuse["abuser"], abuse["database_connections"]
        lines.append(f"| abuse ({a['subscribers']:,} members, {a['rate']} msg/s; {a['abusers']} sockets of one address "
                     f"posting {a['abuser_rate']}/s each in another room, from a process of its own"
                     + (f" that took {abuser['cpu']:.0%} of a core" if "cpu" in abuser else "")
                     + f"): the members' p99; the abuser stored "
                     f"{abuser['stored']:,} of {abuser['sent']:,} (budget {abuser['budget']:,})"
                     + (f", its {abuser['refused']:,} refusals after the first second at most {abuser['refused_in_50ms']} within 50 ms"
                        if "refused_in_50ms" in abuser else "")
                     + "; database connections "
                     f"{held['without']} → {held['with']} | {fmt_ms(abuse['without']['p99_ms'])}{warn(abuse['without'])} "
                     f"| {fmt_ms(abuse['with']['p99_ms'])}{warn(abuse['with'])} "
                     f"| {abuse['with']['p99_ms'] / abuse['without']['p99_ms']:.2f} × |")
    elif a:
        lines.append(f"| abuse | {failed(abuse)} | | |")
    if scaling and scaling.get("status") == "ok":
        one, two = scaling["one"], scaling["two"]
        lines.append(f"| scaling ({k['subscribers']:,} subscribers, {k['in_flight']} probes in flight): fan-out "
                     f"deliveries/s, one worker → two workers behind one Redis "
                     f"| {one.get('deliveries_per_s', 0):,.0f}{warn(one)} | {two.get('deliveries_per_s', 0):,.0f}{warn(two)} "
                     f"| {scaling['ratio']:.2f} × |" if scaling.get("ratio") else "| scaling | error | | |")
    else:
        lines.append(f"| scaling | {failed(scaling)} | | |")
    page = record(document, "page", "ours")
    if page and page.get("status") == "ok":
        one, three = page["one_socket"], page["three_sockets"]
        lines.append(f"| page ({cfg['page']['pages']:,} pages: a chat room, the user's notifications and jobs): "
                     f"server KB per page, one socket of three topics (with) vs three sockets (without); "
                     f"joins/s {one['joins_per_s']:,.0f} vs {three['joins_per_s']:,.0f} "
                     f"| {three['kb_per_page']:.1f} | {one['kb_per_page']:.1f} | {page['memory_ratio']:.2f} × |")
    elif page:
        lines.append(f"| page | {failed(page)} | | |")
    return "\n".join(lines)


def sharding_table(document):
    """One Redis beside a 3-shard cluster (bench/sharding.py): one row each."""
    r = record(document, "sharding", "ours")
    if not r:
        return ""
    cfg = r["config"]
    head = (f"Many rooms ({cfg['rooms']} rooms × {cfg['subscribers']} members over two workers, {cfg['rate']} messages/s "
            "in all), through one Redis and through a Redis Cluster of 3 shards (`bench/sharding.py`):\n\n")
    lines = ["| broker | deliveries/s | p50 / p99 | Redis CPU per delivery | primaries' CPU per publish "
             "| replicas' | share of publishes per shard |", "|---|---:|---|---:|---:|---:|---|"]
    if r.get("status") != "ok":
        return head + "\n".join(lines + [f"| sharding | {failed(r)} | | | | | |"])
    for label, key in (("one Redis", "one_redis"), ("Cluster, 3 shards", "cluster")):
        x = r[key]
        shares = ", ".join(f"{share:.0%}" for share in x["publish_share_per_shard"].values())
        lines.append(f"| {label} | {x['deliveries_per_s']:,.0f} | {fmt_ms(x['p50_ms'])} / {fmt_ms(x['p99_ms'])}, "
                     f"{fmt_loss(x)} | {x['redis_cpu_us_per_delivery']:.1f} µs | {x['primaries_cpu_us_per_publish']:.0f} µs "
                     f"| {x['replicas_cpu_us_per_publish']:.0f} µs | {shares} |")
    return head + "\n".join(lines)


def sharding_section(document):
    table = sharding_table(document)
    return f"\n{table}\n" if table else ""


def api_table(document):
    """Publishing through the server API beside publishing from Django code (bench/api.py)."""
    r = record(document, "api", "ours")
    if not r:
        return ""
    cfg = r["config"]
    head = (f"\nPublishing to a room of {cfg['subscribers']:,} members, {cfg['rate']}/s for {cfg['seconds']} s, "
            "through the server API (HTTP to the page server, keep-alive) and from Django code "
            "(`post_message` in a process of its own), `bench/api.py`:\n\n")
    lines = ["| published | deliveries/s | p50 / p99 from the call to the delivery |", "|---|---:|---|"]
    if r.get("status") != "ok":
        return head + "\n".join(lines + [f"| api | {failed(r)} | |"]) + "\n"
    for label, key in (("through the API", "api"), ("from Django code", "django")):
        x = r[key]
        lines.append(f"| {label} | {x['deliveries_per_s']:,.0f}{warn(x)} | {fmt_ms(x['p50_ms'])} / {fmt_ms(x['p99_ms'])}, "
                     f"{fmt_loss(x)} |")
    return head + "\n".join(lines) + "\n"


def flood_table(document):
    """One row per server and kind of flood: the bystander's echo p99 calm and during the flood."""
    lines = ["| server | flood | bystander echo p50 / p99 / worst, calm | during the flood | the flooder |",
             "|---|---|---:|---:|---|"]
    for server in document["config"]["servers"]:
        r = record(document, "flood", server)
        if not r or r.get("status") != "ok":
            if r:
                lines.append(f"| {SERVERS[server]} | all | {failed(r)} | | |")
            continue
        for kind, result in r["kinds"].items():
            if "error" in result:
                lines.append(f"| {SERVERS[server]} | {kind} | error | | |")
                continue
            calm, during, flooder = result["calm"], result["during"], result["flooder"]
            ended = (f"closed {flooder['close_code']}" if flooder["close_code"] else "no close frame") + (
                f", cut after {flooder['cut_after_s']} s" if flooder["cut_after_s"] else "")
            lines.append(f"| {SERVERS[server]} | {kind} "
                         f"| {fmt_ms(calm['p50_ms'])} / {fmt_ms(calm['p99_ms'])} / {fmt_ms(calm['max_ms'])} "
                         f"| {fmt_ms(during['p50_ms'])} / {fmt_ms(during['p99_ms'])} / {fmt_ms(during['max_ms'])} "
                         f"| {ended}, {flooder['sent_mb']} MB sent |")
    return "\n".join(lines)


def cpu_table(document):
    """Load generator and server CPU (share of one core) during every measurement."""
    lines = ["| scenario | server | load generator | server | Redis | other work on the machine | note |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in document["results"]:
        parts = [("", r)] + [(f" ({key})", r[key]) for key in ("without", "with", "one", "two", "api", "django")
                             if isinstance(r.get(key), dict)]
        for suffix, part in parts:
            if "loadgen_cpu" not in part:
                continue
            lines.append(f"| {r['scenario']}{suffix} | {r['server']} | {part['loadgen_cpu']:.0%}{warn(part)} "
                         f"| {part['server_cpu']:.0%} | {part.get('redis_cpu', 0):.0%} | {part.get('other_cpu', 0):.0%} "
                         f"| {problems(part)} |")
    failures = [r for r in document["results"] if r.get("status") != "ok"]
    for r in failures:
        lines.append(f"| {r['scenario']} | {r['server']} | | | | | {r.get('status')}: {r.get('error', '')[:150]} |")
    return "\n".join(lines)


def problems(part):
    notes = []
    if part.get("dropped"):
        notes.append(f"{part['dropped']} connections dropped")
    if part.get("close_codes"):
        notes.append(f"close codes {part['close_codes']}")
    if part.get("connect_errors"):
        notes.append(f"{sum(part['connect_errors'].values())} failed to connect")
    if part.get("stalled"):
        notes.append("stalled")
    return "; ".join(notes)


def run_line(document):
    m, v = document["machine"], document["versions"]
    mode = "QUICK (small sizes, short windows)" if document["quick"] else "full"
    pinning = (f"load generator on CPU {m['loadgen_cpus']}, servers and Redis on {m['server_cpus']}"
               if m["loadgen_cpus"] else "not pinned (one CPU)")
    return (f"{mode} run of {document['started']}, {document['duration_s']:.0f} s; {m['cpus']} × {m['cpu_model']}; "
            f"{pinning}; load average at start {m['load_average_at_start'][0]:.2f}; commit {v['commit']}"
            f"{' (with uncommitted changes)' if v['dirty'] else ''}; Python {v['python']}, gevent {v['gevent']}, "
            f"picows {v['picows']}, uvloop {v['uvloop']}; {v['channels']}.")


def results_markdown(document, checks, plot_paths, relative_to):
    late = document["config"]["late_after"]
    links = "\n".join(f"![{p.stem}]({_relative(p, relative_to)})" for p in plot_paths)
    return f"""{run_line(document)}

{main_table(document)}

{ours_table(document)}

{crowd_table(document)}

One client floods (`bench/flood.py`): a bystander echoes every 20 ms on the same server.

{flood_table(document)}
{sharding_section(document)}{api_table(document)}
p50/p99 count every expected delivery; one not delivered within {late:g} s of its publish is lost
and counts as infinitely late, so a run that lost more than 1 % shows p99 ∞. {WARN.strip()} marks a
number measured while the load generator used ≥ {LOADGEN_SATURATED:.0%} of its core.

### Targets

```
{chr(10).join(check.line() for check in checks)}
```

### Plots

{links}

### CPU during each measurement (share of one core)

"Other work" is the rest of the machine's busy time: where it is high, other processes took CPU
from the server or the load generator and the numbers of that row are noisy.

{cpu_table(document)}
"""


def _relative(path, base):
    import os

    return os.path.relpath(path, base)


def docs_page(document, results_path, checks, plot_paths):
    findings = FINDINGS.read_text() if FINDINGS.exists() else ""
    # The scenario sizes quoted below are those of a full run.
    e, el, f1, f2, idle, slow, k, c1, c2, c3 = (FULL[name] for name in (
        "echo", "echo-large", "fanout-1", "fanout-2", "idle", "slow-consumer", "scaling", "crowd-1", "crowd-2", "crowd-3"))
    sh = FULL["sharding"]
    ap = FULL["api"]
    late, quick_late, warm, publishers = FULL["late_after"], QUICK["late_after"], WARM_UP_PROBES, PUBLISHERS
    source = results_path.relative_to(ROOT) if results_path.is_relative_to(ROOT) else results_path
    return f"""# Performance

<!-- Generated by `python -m bench.report {source} --docs` (make bench does it):
     edit bench/report.py (the text) or bench/FINDINGS.md (the findings), not this file. -->

Our websocket worker beside Django Channels (daphne + channels_redis) and a bare gevent-websocket
server, measured by one command in one run on one machine. Absolute numbers depend on the
machine; the **ratios** between servers measured in the same run are what we hold ourselves to.

## How to run

```sh
make bench            # the full run: about 25 minutes on two CPUs (at most 40)
make bench QUICK=1    # smaller sizes and shorter windows, about 7 minutes (for development)
.venv/bin/python -m bench.run --quick --servers ours,bare --scenarios echo,fanout-1   # a subset
.venv/bin/python -m bench.report bench/results/<date>.json --docs   # rebuild this page from a results file
.venv/bin/python -m bench.memory      # where the memory of an idle connection goes (see Findings)
```

`make bench` needs `redis-server` (Debian package) and builds two environments: ours (`.venv`,
plus `bench/requirements.txt`: picows, uvloop, matplotlib, psutil, py-spy) and
`bench/.venv-channels` (`bench/requirements-channels.txt`: Channels, daphne, channels_redis).
It writes `bench/results/<date>.json`, `<date>.md` (the tables) and `<date>-*.png` (the plots),
prints the tables and one PASS/MISS line per target, and (full runs) regenerates this page.
The benchmark is not part of `make test` or CI.

## How it measures

- **Servers.** Each scenario starts a fresh stack on free loopback ports: `redis-server`, then
  the server, with a fresh copy of a migrated SQLite database on tmpfs where there is one
  (so disk flushes, which differ between machines, stay out of the numbers).
  - *ours*: `gunicorn -c deploy/gunicorn_ws.py project.wsgi:websocket` with `DEBUG=0`, one
    worker, the real `/echo/` and `/chat/<room>/` views (form validation, database write, Redis
    PubSub, our transport): whatever is on the branch when the benchmark runs.
  - *bare gevent-websocket* (`bench/bare_server.py`): a plain WSGI app under gevent-websocket's
    own `GeventWebSocketWorker`, one Redis PubSub greenlet per process sending each message to
    the process's sockets; no Django, no database. The anchor for what gevent itself costs.
  - *Channels* (`bench/channels_app/`): daphne serving `AsyncWebsocketConsumer`s written as the
    Channels tutorial writes them: echo, and a room consumer that validates each message with a
    Django form, **stores it in SQLite** (`database_sync_to_async`) and `group_send`s it as a
    `message` event. It sends `welcome` but no join/leave notices nor history (setup traffic,
    not measured). Two channel layers, each with its defaults: `RedisChannelLayer` (what the
    docs recommend) and `RedisPubSubChannelLayer`. Daphne's listen backlog is raised to 2048
    (gunicorn's) so that thousands of connects measure Channels, not the kernel's SYN queue.
- **Pinning.** With two or more CPUs, the load generator is pinned to the last CPU and each
  server with its Redis to the first (`taskset`). "Two workers" get the first two CPUs; on a
  two-CPU machine the second one is the load generator's, which that row then shares.
- **Load generator.** One process: asyncio on uvloop with picows (WebSocket framing in Cython);
  only the abuse scenario's abuser posts from a second one (`bench/abuser.py`, on the same CPU at
  the lowest priority), so that its sending does not delay the members' receives. Its CPU share and the servers' are recorded for every measurement (table below); a number
  taken while it used ≥ {LOADGEN_SATURATED:.0%} of its core is flagged {WARN.strip()}: there the client may be
  the bottleneck. File descriptor limits are raised to the hard limit for it and the servers.
- **Bounds.** Every connect, drain and scenario has a deadline, and the whole run a budget;
  a scenario that fails or times out is reported as such and the run goes on.

## What each scenario means

| scenario | what it does | what it tells |
|---|---|---|
| echo | {e['connections']} connections, each with one {e['size']} B text message bouncing back and forth, for {e['seconds']} s | messages/s of the request path: framing, greenlet switches, per-message overhead |
| echo-large | {el['connections']} connections × one {el['size'] // 1024} KiB binary message each, bouncing, for {el['seconds']} s | the cost of (un)masking and copying big frames |
| fan-out | {f1['subscribers']:,} subscribers join one chat room (each waits for `welcome`); after {warm} warm-up probes, {f1['rate']} probes/s for {f1['seconds']} s are published through the chat path by {publishers} publisher connections; each probe's text carries its sequence number. Again with {f2['subscribers']:,} subscribers at {f2['rate']}/s | latency from publish to each delivery (p50/p99) and loss: a delivery later than {late:g} s (QUICK: {quick_late:g} s) counts as lost |
| idle | {idle['connections']:,} silent `/echo/` connections after a warm-up | server RSS growth per connection (all server processes, not Redis) |
| slow consumer (ours) | the {slow['subscribers']:,}-subscriber fan-out at {slow['rate']}/s run twice on one room for {slow['seconds']} s each: as is, then with one more member that never reads (its receive buffer shrunk to 4 KiB) | whether one stuck client slows the others; whether the server closes it (1013) |
| crowd | {c1['subscribers']:,}, {c2['subscribers']:,} and {c3['subscribers']:,} members join one chat room as fast as the load generator connects ({c1['concurrency']} handshakes at once; 10,000 against ours and bare only); the moment the last has its `welcome`, one probe; the moment every member has it, {c1['rate']} probes/s for {c1['seconds']} s | joins/s, the time until one message reached every member, then fan-out p50/p99 and loss right after a crowd filled the room |
| sharding (ours) | {sh['rooms']} chat rooms of {sh['subscribers']} members spread over two workers, {sh['rate']} messages/s in all spread over the rooms for {sh['seconds']} s: through one Redis, then through a Redis Cluster of three primaries with a replica each (sharded PubSub) | Redis CPU per delivery (its own `INFO`, less what it spends at rest) and the share of publishes each shard took: what decides when one Redis is the limit, measured without the cores to reach it (see Findings, Past one Redis) |
| api (ours) | {ap['subscribers']:,} members of one chat room; {ap['rate']} publishes/s for {ap['seconds']} s through the server API (`POST /realtime/api/publish` with a key, to the gunicorn page server over keep-alive connections), then the same from Django code (`post_message` in a process of its own) | what the HTTP API adds to a publish: deliveries/s and latency from the call to each delivery, beside Django code's (`bench/api.py`) |
| scaling (ours) | closed-loop fan-out ({k['in_flight']} probes in flight; the next is published when every subscriber has one) to {k['subscribers']:,} subscribers on one worker, then split evenly over two workers (two gunicorn instances) sharing one Redis | fan-out deliveries/s the server side sustains, and how it grows with a second worker |

No scenario waits for setup traffic to settle: each measures from the moment every member has
its `welcome` (our chat's presence goes out as coalesced diffs, so there is little of it).
Sizes of a QUICK run are smaller (see the table headers).

## Latest results

{results_markdown(document, checks, plot_paths, DOCS.parent)}

## Findings

{findings}"""


def publish(results_path, docs=False, out=sys.stdout):
    """Write the markdown and plots next to the results; print the tables and PASS/MISS lines."""
    results_path = Path(results_path)
    document = load(results_path)
    checks = evaluate(document)
    stem = results_path.with_suffix("")
    plot_paths = plots.draw_all(document, stem)
    markdown = results_markdown(document, checks, plot_paths, results_path.parent)
    stem.with_suffix(".md").write_text(f"# Benchmark results\n\n{markdown}")
    if docs:
        DOCS.write_text(docs_page(document, results_path, checks, plot_paths))
    print(f"\n{main_table(document)}\n\n{ours_table(document)}\n\n{sharding_table(document)}\n", file=out)
    print(f"tables: {stem.with_suffix('.md')}; plots: {', '.join(p.name for p in plot_paths)}"
          + (f"; docs: {DOCS.relative_to(ROOT)}" if docs else ""), file=out)
    print("\nTargets (ratios measured in this run):", file=out)
    for check in checks:
        print("  " + check.line(), file=out)
    passed = sum(check.passed for check in checks)
    print(f"{passed} of {len(checks)} targets PASS", file=out)
    return checks


def main(argv=None):
    parser = argparse.ArgumentParser(description="Tables, plots and docs from a benchmark results file.")
    parser.add_argument("results", nargs="?", help="a bench/results/*.json file (default: the newest full run)")
    parser.add_argument("--docs", action="store_true", help="also regenerate docs/performance.md")
    args = parser.parse_args(argv)
    path = args.results or latest()
    if path is None:
        parser.error("no results file: run `make bench` first")
    publish(path, docs=args.docs)
    return 0


def latest():
    files = sorted((ROOT / "bench" / "results").glob("*.json"))
    full = [f for f in files if not f.stem.endswith("-quick")]
    return (full or files or [None])[-1]


if __name__ == "__main__":
    sys.exit(main())
