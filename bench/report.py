"""The tables of a results JSON (printed by `python -m bench`, or again with `--show FILE`)."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

MEASURES = ("first run -j1", "first run -j2", "no-op rerun", "dry-run, nothing changed", "dry-run, input changed")
BASE = "ml-base"


def fmt_time(seconds: float) -> str:
    if seconds < 0.1:
        return f"{seconds * 1000:.0f}ms" if seconds >= 0.01 else f"{seconds * 1000:.1f}ms"
    return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"


def fmt_stats(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    if "error" in row:
        return "failed"
    if "median_s" not in row:
        return "-"
    if len(row["runs_s"]) == 1:
        return fmt_time(row["median_s"])
    return f"{fmt_time(row['median_s'])} [{fmt_time(row['min_s'])}–{fmt_time(row['max_s'])}]"


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if not a or not b or "median_s" not in a or "median_s" not in b or not b["median_s"]:
        return "-"
    return f"{a['median_s'] / b['median_s']:.2f}x"


def _mb(row: dict[str, Any] | None) -> str:
    return f"{row['maxrss_mb']:.0f}" if row and "maxrss_mb" in row else "-"


def pipe_rows(pipes: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows: one row per (shape, N, measure), a column per tool, ratios to doit and make."""
    found: dict[tuple[str, int, str], dict[str, dict[str, Any]]] = {}
    for row in pipes:
        found.setdefault((row["shape"], row["n"], row["measure"]), {})[row["tool"]] = row
    base = any(row["tool"] == BASE for row in pipes)
    tools = ["ml", BASE, "doit", "make"] if base else ["ml", "doit", "make"]
    headers = ["shape", "N", "measure", "ml median [min–max]", *tools[1:], "ml/doit"]
    headers += ["base/doit", "ml/base"] if base else []
    headers += ["ml/make", "ml µs/job", "ml MB", "doit MB"]
    order = sorted(found, key=lambda k: (k[1], k[0], MEASURES.index(k[2]) if k[2] in MEASURES else 99))
    rows = []
    for shape, n, measure in order:
        by_tool = found[(shape, n, measure)]
        ml, doit, make = by_tool.get("ml"), by_tool.get("doit"), by_tool.get("make")
        per_job = f"{ml['median_s'] / n * 1e6:.0f}" if ml and "median_s" in ml else "-"
        row = [shape, n, measure, *(fmt_stats(by_tool.get(t)) for t in tools), _ratio(ml, doit)]
        if base:
            row += [_ratio(by_tool.get(BASE), doit), _ratio(ml, by_tool.get(BASE))]
        rows.append([*row, _ratio(ml, make), per_job, _mb(ml), _mb(doit)])
    return headers, rows


def print_report(results: dict[str, Any], fmt: str = "simple") -> None:
    machine = results.get("machine", {})
    print(f"{machine.get('cpu')}, {machine.get('nproc')} CPUs, Python {machine.get('python')}, "
          f"doit {machine.get('doit')}, mlpipe {machine.get('mlpipe_commit')}; "
          f"load average {_load(results, 'before')} before, {_load(results, 'after')} after\n")
    if results.get("pipes"):
        headers, rows = pipe_rows(results["pipes"])
        print(tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True))
        print()
    if results.get("startup"):
        rows = [[name, fmt_stats(s), _mb(s)] for name, s in results["startup"].items()]
        print(tabulate(rows, headers=["start-up", "median [min–max]", "peak MB"], tablefmt=fmt,
                       disable_numparse=True))
        print()
    if results.get("parallel"):
        by = {(r["measure"], r["tool"]): r for r in results["parallel"]}
        n = results["config"]["sleep_jobs"]
        tools = [t for t in ("ml", BASE, "doit", "make") if ("-j1", t) in by]
        rows = [[tool, fmt_stats(by.get(("-j1", tool))), fmt_stats(by.get(("-j2", tool))),
                 _ratio(by.get(("-j1", tool)), by.get(("-j2", tool)))] for tool in tools]
        print(tabulate(rows, headers=[f"{n} jobs x 100 ms", "-j1", "-j2", "speed-up"], tablefmt=fmt,
                       disable_numparse=True))
        print()
    hashing = results.get("hashing")
    if hashing:
        tp = hashing["throughput"]
        mb = hashing["size_bytes"] >> 20
        rows = [[f"md5 of {mb} MB: mlpipe.core.hashing.md5_file", fmt_time(tp["md5_file"]["min_s"]),
                 f"{tp['md5_file']['mb_per_s_best']} MB/s"],
                ["the same file: md5sum", fmt_time(tp["md5sum"]["min_s"]), f"{tp['md5sum']['mb_per_s_best']} MB/s"],
                ["md5_file / md5sum throughput (best; median)", "",
                 f"{tp['ratio_best']:.0%}; {tp.get('ratio_median', tp['ratio_best']):.0%}"]]
        rows += [[f"DigestCache: {step}", fmt_time(v["seconds"]), f"{v['bytes_read'] >> 20} MB read"]
                 for step, v in hashing["memo"].items()]
        rows += [[f"ml runpipe, {mb} MB input: {step}", fmt_time(v), ""] for step, v in hashing["ml_runpipe"].items()]
        print(tabulate(rows, headers=["hashing (best of runs)", "time", ""], tablefmt=fmt, disable_numparse=True))


def _load(results: dict[str, Any], when: str) -> str:
    load = results.get(f"load_average_{when}")
    return "/".join(f"{x:.1f}" for x in load) if load else "?"
