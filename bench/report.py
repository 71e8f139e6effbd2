"""From the runs of all rounds to medians, ratios, the issue's targets, tables, JSON and a chart.

Every figure is the median over the rounds. A ratio compares a target with redis-server in the
same scenario, at the same pipelining, from the same benchmark run (``x redis``).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.scenarios import EMBEDDED, JSHOST_TARGETS, REDIS, REMOTE, Scenario

Row = dict[str, Any]


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ok(runs: Iterable[Row]) -> list[Row]:
    return [r for r in runs if r.get("error") is None]


# --- medians --------------------------------------------------------------------------------


def summarize_runs(runs: Sequence[Row], scenarios: Sequence[Scenario]) -> list[Row]:
    """One row per (scenario, pipeline, target): median req/s, ratio to redis, CPU µs/req."""
    groups: dict[tuple[str, int, str], list[Row]] = defaultdict(list)
    for run in _ok(runs):
        groups[(run["scenario"], run["pipeline"], run["target"])].append(run)
    anchor_of = {s.key: s.anchor_of or s.key for s in scenarios}
    medians = {key: _median(r["rps"] for r in rows) for key, rows in groups.items()}
    rows: list[Row] = []
    for (scenario, pipeline, target), group in groups.items():
        rps = medians[(scenario, pipeline, target)]
        anchor = medians.get((anchor_of.get(scenario, scenario), pipeline, REDIS))
        rows.append({
            "scenario": scenario,
            "pipeline": pipeline,
            "target": target,
            "rounds": len(group),
            "rps": rps,
            "ratio_to_redis": rps / anchor if rps and anchor else None,
            "cpu_us_per_req": _median(r["cpu_us_per_req"][0] for r in group),
            "backend_cpu_us_per_req": _median(
                r["cpu_us_per_req"][1] if len(r["cpu_us_per_req"]) > 1 else None for r in group
            ),
            "p50_ms": _median(r["p50_ms"] for r in group),
            "p99_ms": _median(r["p99_ms"] for r in group),
        })
    order = {s.key: i for i, s in enumerate(scenarios)}
    target_order = {REDIS: 0, EMBEDDED: 1, REMOTE: 2}
    rows.sort(key=lambda r: (order.get(r["scenario"], 99), r["pipeline"],
                             target_order[r["target"]]))
    return rows


def summarize_latency(runs: Sequence[Row]) -> list[Row]:
    """One row per (scenario, target) of the 1-client runs: median p50/p99 (µs) and req/s."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for run in _ok(runs):
        groups[(run["scenario"], run["target"])].append(run)
    return [
        {
            "scenario": scenario,
            "target": target,
            "rounds": len(group),
            "p50_us": _us(_median(r["p50_ms"] for r in group)),
            "p99_us": _us(_median(r["p99_ms"] for r in group)),
            "rps": _median(r["rps"] for r in group),
        }
        for (scenario, target), group in sorted(groups.items())
    ]


def _us(ms: float | None) -> float | None:
    return None if ms is None else ms * 1000.0


def summarize_scale(runs: Sequence[Row]) -> list[Row]:
    """One row per jshost target of scenario 5: median RSS added, idle and loaded req/s."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for run in _ok(runs):
        groups[run["target"]].append(run)
    rows = []
    for target, group in groups.items():
        idle = _median(r["rps_idle"] for r in group)
        loaded = _median(r["rps_loaded"] for r in group)
        rows.append({
            "target": target,
            "rounds": len(group),
            "connections": min(r["connections"] for r in group),
            # The largest: memory freed after a round stays with the process, so later rounds
            # reuse it and add less (round 1 shows the real cost).
            "rss_added_mb": max(r["rss_added_mb"] for r in group),
            "rss_per_call_kb": max(r["rss_per_call_kb"] for r in group),
            "rps_idle": idle,
            "rps_loaded": loaded,
            "loaded_to_idle": _median(r["loaded_to_idle"] for r in group),
            "all_released": all(r["released_ok"] == r["connections"] for r in group),
        })
    return rows


# --- targets of the issue ---------------------------------------------------------------------


def _find(rows: Sequence[Row], **match: Any) -> Row | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def _target(name: str, goal: str, measured: str | None, met: bool | None) -> Row:
    return {"target": name, "goal": goal, "measured": measured or "not measured", "met": met}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio_target(
    summary: Sequence[Row], name: str, scenario: str, pipeline: int, target: str, goal: float
) -> Row:
    row = _find(summary, scenario=scenario, pipeline=pipeline, target=target)
    ratio = row["ratio_to_redis"] if row else None
    anchor = _find(summary, scenario=scenario, pipeline=pipeline, target=REDIS)
    if row is None or ratio is None or anchor is None:
        return _target(name, f">= {goal}x redis", None, None)
    text = f"{ratio:.3f}x ({_fmt(row['rps'], 0)} vs {_fmt(anchor['rps'], 0)} req/s)"
    return _target(name, f">= {goal}x redis", text, ratio >= goal)


def _cpu_target(summary: Sequence[Row], target: str) -> Row:
    name = f"1 trivial FCALL, -P 1, {target}"
    row = _find(summary, scenario="1-trivial", pipeline=1, target=target)
    anchor = _find(summary, scenario="1-trivial", pipeline=1, target=REDIS)
    if row is None or anchor is None or not anchor["cpu_us_per_req"]:
        return _target(name, "CPU us/req <= 2x redis-server's", None, None)
    factor = row["cpu_us_per_req"] / anchor["cpu_us_per_req"]
    text = (f"{row['cpu_us_per_req']:.1f} vs {anchor['cpu_us_per_req']:.2f} us/req "
            f"({factor:.1f}x)")
    return _target(name, "CPU us/req <= 2x redis-server's", text, factor <= 2.0)


def _floor_target(
    summary: Sequence[Row], name: str, target: str, floor_us: float | None, what: str
) -> Row:
    goal = f">= 0.7 x 1/(2 x {what})"
    row = _find(summary, scenario="2-setget", pipeline=16, target=target)
    if row is None or not floor_us or row["rps"] is None:
        return _target(name, goal, None, None)
    bound = 1e6 / (2 * floor_us)
    text = (f"{_fmt(row['rps'], 0)} req/s at -P 16 = {row['rps'] / bound:.2f} x "
            f"{_fmt(bound, 0)} (floor {floor_us:.1f} us)")
    return _target(name, goal, text, row["rps"] >= 0.7 * bound)


def _async_target(latency: Sequence[Row], target: str) -> Row:
    name = f"4 FCALLASYNC vs FCALL, {target}"
    asynchronous = _find(latency, scenario="4-async", target=target)
    synchronous = _find(latency, scenario="4-sync", target=target)
    if not asynchronous or not synchronous or asynchronous["p50_us"] is None:
        return _target(name, "p50 added <= 50 us (1 client)", None, None)
    added = asynchronous["p50_us"] - synchronous["p50_us"]
    text = (f"p50 {asynchronous['p50_us']:.0f} vs {synchronous['p50_us']:.0f} us: "
            f"{added:+.0f} us")
    return _target(name, "p50 added <= 50 us (1 client)", text, added <= 50.0)


def _scale_targets(scale: Sequence[Row], target: str, connections: int) -> list[Row]:
    row = _find(scale, target=target)
    name = f"5 {connections:,} pending async, {target}"
    if row is None:
        return [_target(name + ": memory", "<= 200 MB added", None, None),
                _target(name + ": scenario 1", ">= 0.9x idle", None, None)]
    released = "" if row["all_released"] else " (NOT all replies correct)"
    mem = f"{row['rss_added_mb']:.1f} MB ({row['rss_per_call_kb']:.1f} kB/call){released}"
    thr = (f"{row['loaded_to_idle']:.2f}x ({_fmt(row['rps_loaded'], 0)} vs "
           f"{_fmt(row['rps_idle'], 0)} req/s)")
    ok = row["all_released"]
    return [
        _target(name + ": memory", "<= 200 MB added", mem, ok and row["rss_added_mb"] <= 200),
        _target(name + ": scenario 1", ">= 0.9x idle", thr, ok and row["loaded_to_idle"] >= 0.9),
    ]


def evaluate_targets(
    summary: Sequence[Row],
    latency: Sequence[Row],
    scale: Sequence[Row],
    floors: dict[str, Any],
    connections: int,
) -> list[Row]:
    """The issue's targets table, each with the measured value and met / not met."""
    rows = [
        _ratio_target(summary, "1 trivial FCALL, embedded, -P 16", "1-trivial", 16, EMBEDDED, 0.5),
        *(_cpu_target(summary, t) for t in JSHOST_TARGETS),
        _floor_target(summary, "2 setget, embedded", EMBEDDED, floors.get("embedded_floor_us"),
                      "one embedded-store command"),
        _floor_target(summary, "2 setget, remote", REMOTE, floors.get("remote_round_trip_us"),
                      "one sync round trip jshost->redis"),
    ]
    for op in ("set", "get"):
        for pipeline, goal in ((16, 0.4), (1, 0.8)):
            name = f"3 passthrough {op.upper()}, remote, -P {pipeline}"
            rows.append(_ratio_target(summary, name, f"3-{op}", pipeline, REMOTE, goal))
    rows += [_async_target(latency, t) for t in JSHOST_TARGETS]
    for target in JSHOST_TARGETS:
        rows += _scale_targets(scale, target, connections)
    return rows


# --- printing ---------------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 3) -> str:
    """A plain-text table: the first `left` columns (text) left-aligned, the others right."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in pairs]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def throughput_table(summary: Sequence[Row]) -> str:
    headers = ["scenario", "P", "target", "req/s", "x redis", "CPU us/req", "+backend",
               "p50 ms", "p99 ms"]
    rows = [
        [r["scenario"], str(r["pipeline"]), r["target"], _fmt(r["rps"], 0),
         _fmt(r["ratio_to_redis"], 3), _fmt(r["cpu_us_per_req"]),
         _fmt(r["backend_cpu_us_per_req"]), _fmt(r["p50_ms"], 3), _fmt(r["p99_ms"], 3)]
        for r in summary
    ]
    return format_table(headers, rows)


def latency_table(latency: Sequence[Row]) -> str:
    headers = ["scenario", "target", "", "p50 us", "p99 us", "req/s"]
    rows = [[r["scenario"], r["target"], "", _fmt(r["p50_us"], 0), _fmt(r["p99_us"], 0),
             _fmt(r["rps"], 0)] for r in latency]
    return format_table(headers, rows)


def scale_table(scale: Sequence[Row]) -> str:
    headers = ["target", "conns", "", "RSS added MB (max)", "kB/call", "idle req/s", "loaded req/s",
               "loaded/idle", "replies ok"]
    rows = [[r["target"], f"{r['connections']:,}", "", _fmt(r["rss_added_mb"], 1),
             _fmt(r["rss_per_call_kb"], 1), _fmt(r["rps_idle"], 0), _fmt(r["rps_loaded"], 0),
             _fmt(r["loaded_to_idle"]), "yes" if r["all_released"] else "NO"] for r in scale]
    return format_table(headers, rows)


def targets_table(targets: Sequence[Row]) -> str:
    verdict = {True: "met", False: "NOT MET", None: "-"}
    rows = [[t["target"], t["goal"], t["measured"], verdict[t["met"]]] for t in targets]
    header = ["target", "goal", "measured", "verdict"]
    widths = [max(len(r[i]) for r in [*rows, header]) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def floors_lines(floors: dict[str, Any]) -> str:
    def us(name: str) -> str:
        return _fmt(floors.get(name), 1)

    embedded = (f"embedded store, in process: SET {us('embedded_set_us')} us, GET "
                f"{us('embedded_get_us')} us; through jshost at -P 16: SET "
                f"{us('embedded_set_wire_us')} us, GET {us('embedded_get_wire_us')} us")
    fastest = (f"  -> one command by its fastest path: {us('embedded_floor_us')} us "
               f"({floors.get('embedded_floor_path', '-')})")
    remote = ("one sync round trip jshost->redis (RemoteStore PING): "
              f"{us('remote_round_trip_us')} us")
    return f"{embedded}\n{fastest}\n{remote}"


def profile_lines(profile: dict[str, Any]) -> str:
    head = (f"cProfile of `jshost serve` (embedded) during {profile['requests']:,} trivial "
            f"RG.FCALL at -P {profile['pipeline']} ({_fmt(profile['rps_under_profiler'], 0)} "
            f"req/s under the profiler); file {profile['file']}")
    out = [head]
    labels = (("cumulative", "cumulative (functions called >= 100 times)"),
              ("own", "own time (tottime)"))
    for kind, label in labels:
        out.append(f"\ntop {len(profile[kind])} by {label}, us per request:")
        rows = [[r["function"], f"{r['calls']:,}", f"{r['cumulative_us_per_req']:.2f}",
                 f"{r['own_us_per_req']:.2f}"] for r in profile[kind]]
        out.append(format_table(["function", "calls", "cum us", "own us"], rows, left=1))
    return "\n".join(out)


# --- files ------------------------------------------------------------------------------------


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def draw_chart(path: Path, summary: Sequence[Row], title: str) -> bool:
    """A bar chart of the ratios to redis-server (log scale); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups = sorted({(r["scenario"], r["pipeline"]) for r in summary if r["target"] != REDIS},
                    key=lambda g: ([r["scenario"] for r in summary].index(g[0]), g[1]))

    def ratio(group: tuple[str, int], target: str) -> float:
        row = _find(summary, scenario=group[0], pipeline=group[1], target=target) or {}
        return float(row.get("ratio_to_redis") or 0.0)

    fig, ax = plt.subplots(figsize=(max(8, len(groups) * 0.9), 5))
    width = 0.4
    for i, target in enumerate(JSHOST_TARGETS):
        xs = [n + (i - 0.5) * width for n in range(len(groups))]
        values = [ratio(g, target) for g in groups]
        bars = ax.bar(xs, values, width, label=target)
        ax.bar_label(bars, labels=[f"{v:.2f}" if v else "" for v in values], fontsize=7)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="redis-server = 1")
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)), [f"{s}\n-P {p}" for s, p in groups], fontsize=8)
    ax.set_ylabel("req/s relative to redis-server (same run)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
