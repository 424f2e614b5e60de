"""Run the benchmarks and write their figures: ``python -m bench.run --size full|smoke [--only NAME]``.

Results are kept per benchmark in a JSON file next to the Markdown (by default
docs/benchmarks.json and docs/benchmarks.md), so ``--only`` replaces one
section and keeps the others. ``--size smoke`` writes to a temporary directory
unless ``--out`` is given. The exit status is 1 when a benchmark crashes;
a missed target is reported, not an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    api_me,
    audit_append,
    audit_verify,
    catalog_model_page,
    catalog_search,
    catalog_sync,
    governance_flow,
    scaffolder_run,
)
from bench.common import ROOT, Result, Size

BENCHMARKS: dict[str, Callable[[Size], Result]] = {
    audit_append.NAME: audit_append.measure,
    audit_verify.NAME: audit_verify.measure,
    api_me.NAME: api_me.measure,
    catalog_search.NAME: catalog_search.measure,
    catalog_model_page.NAME: catalog_model_page.measure,
    catalog_sync.NAME: catalog_sync.measure,
    governance_flow.NAME: governance_flow.measure,
    scaffolder_run.NAME: scaffolder_run.measure,
}
DOCS = ROOT / "docs" / "benchmarks.md"
BUSY_THRESHOLD = 0.15
BUSY = " — **other work was running on the machine: absolute figures are noisy, the ratios less so.**"


def commands(name: str, size: str) -> list[str]:
    make = "make bench" + ("" if size == "full" else f" SIZE={size}") + f" ONLY={name}"
    return [make, f".venv/bin/python -m bench.run --size {size} --only {name}"]


def machine() -> dict[str, str]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import django

    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "django": django.get_version(),
        "commit": _commit(),
    }


def cpu_seconds() -> tuple[float, float]:
    """CPU-seconds used so far by the whole machine and by this process with its finished children."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        fields = [0] * 8
    machine = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return machine, sum(u.ru_utime + u.ru_stime for u in usage)


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" + uncommitted changes" if git("status", "--porcelain") else "")


def _figure(metric: dict[str, Any]) -> str:
    return f"{metric['value']:,.{metric['digits']}f} {metric['unit']}"


def _target(metric: dict[str, Any]) -> str:
    if not metric["target"]:
        return ""
    op, bound = metric["target"].split()
    sign = "≥" if op == ">=" else "≤"
    return f"{sign} {float(bound):,.0f} {metric['unit']} — " + ("met" if metric["met"] else "**missed**")


def render_section(entry: dict[str, Any]) -> list[str]:
    m = entry["machine"]
    make, underlying = commands(entry["name"], entry["size"])
    others = entry.get("cpu_others", 0.0)
    busy = "." if others <= BUSY_THRESHOLD else BUSY
    lines = [
        f'<a id="{entry["name"]}"></a>',
        "",
        f"## `{entry['name']}` — {entry['title']}",
        "",
        f"Measured {entry['date']} ({entry['size']} size, {entry['seconds']:.0f} s) on {m['cores']} cores "
        f"{m['cpu']}, {m['os']}, Python {m['python']}, Django {m['django']}, commit {m['commit']}.",
        "",
        f"CPU used during the run outside the benchmark's processes (other jobs, a PostgreSQL server): "
        f"{others:.0%}{busy}",
        "",
        f"Reproduce: `{make}` (runs `{underlying}`).",
        "",
        f"Peer: {entry['peer']}.",
        "",
        "| Measure | Value | Target |",
        "|---|---:|---|",
    ]
    lines += [f"| {x['label']} | {_figure(x)} | {_target(x)} |" for x in entry["metrics"]]
    lines += ["", "| Ratio against the peer | Value |", "|---|---:|"]
    lines += [f"| {r['label']} | {r['value']:.2f}× |" for r in entry["ratios"]]
    lines += ["", "What runs:", ""] + [f"- {r}" for r in entry["runs"]]
    if entry["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in entry["notes"]]
    return lines + [""]


def render(store: dict[str, dict[str, Any]], size: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`.venv/bin/python -m bench.run`) from the figures in "
        "`benchmarks.json` next to this file; do not edit by hand.",
        "Every figure is compared with a named peer measured in the same run on the same machine.",
        "",
        "- All benchmarks: `make bench` (`.venv/bin/python -m bench.run --size full`).",
        "- One benchmark: `make bench ONLY=<name>`; it rewrites only its own section.",
        "- CI smoke run (tiny sizes, writes to a temporary file): `make bench SIZE=smoke`.",
        "- Generated data is cached in `.bench-cache/` by its parameters; delete the folder to regenerate.",
        "",
    ]
    if size != "full":
        lines += [f"**{size} size: tiny inputs to check that the benchmarks run; the figures mean little.**", ""]
    lines += ["| Benchmark | Measured | Headline figure | Peer ratio |", "|---|---|---|---|"]
    for name in BENCHMARKS:
        entry = store.get(name)
        if entry is None:
            lines.append(f"| `{name}` | not run yet (`{commands(name, size)[0]}`) | | |")
            continue
        targeted = [x for x in entry["metrics"] if x["target"]] or entry["metrics"][:1]
        headline = "; ".join(
            f"{x['label']}: {_figure(x)}" + (f" ({_target(x)})" if x["target"] else "") for x in targeted
        )
        ratio = entry["ratios"][0]
        lines.append(
            f"| [`{name}`](#{name}) | {entry['date']} | {headline} | {ratio['label']}: {ratio['value']:.2f}× |"
        )
    lines.append("")
    for name in BENCHMARKS:
        if name in store:
            lines += render_section(store[name])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["smoke", "full"], default="full")
    parser.add_argument("--only", choices=list(BENCHMARKS), help="Run one benchmark; keep the others' figures.")
    parser.add_argument("--out", type=Path, help="Markdown to write (default: docs/benchmarks.md, or a temp file)")
    args = parser.parse_args(argv)
    default = DOCS if args.size == "full" else Path(tempfile.gettempdir()) / "portal-bench-smoke" / "benchmarks.md"
    out: Path = args.out or default
    store_path = out.with_suffix(".json")
    store: dict[str, dict[str, Any]] = json.loads(store_path.read_text()) if store_path.exists() else {}
    about = machine()
    failed: list[str] = []
    for name in [args.only] if args.only else BENCHMARKS:
        print(f"== {name} ({args.size})", flush=True)
        started, cpu_before = time.perf_counter(), cpu_seconds()
        try:
            result = BENCHMARKS[name](args.size)
        except Exception:
            traceback.print_exc()
            print(f"!! {name} crashed; its previous figures are kept", file=sys.stderr)
            failed.append(name)
            continue
        elapsed, cpu_after = time.perf_counter() - started, cpu_seconds()
        others = (cpu_after[0] - cpu_before[0]) - (cpu_after[1] - cpu_before[1])
        entry = result.to_json()
        entry.update(
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            cpu_others=max(0.0, others / (elapsed * (os.cpu_count() or 1))),
            seconds=elapsed,
            machine=about,
        )
        store[name] = entry
        print("\n".join(render_section(entry)), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    store_path.write_text(json.dumps(store, indent=2, ensure_ascii=False) + "\n")
    out.write_text(render(store, args.size))
    print(f"wrote {out} and {store_path.name}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
