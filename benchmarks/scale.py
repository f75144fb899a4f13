"""Wall time and peak memory of every stage of the whole pipeline, by cohort size.

Usage::

    python benchmarks/scale.py [--sizes 10000 100000] [--demo] [--cores 2]
                               [--set bootstrap.replicates=20 ...] [--workdir DIR] [--json OUT]

For each size N: ``python -m pannet.demo --patients N`` writes the three site exports
(Uppsala CSV, Gothenburg xlsx, Boston REDCap), a copy of the project is pointed at them
(``sites.<site>.data_dir``), and ``snakemake --cores C`` runs the whole workflow from
clean. ``--demo`` also times the committed demo from clean and a no-op rerun.

Per stage (a Snakemake rule, named by its script) the table gives the number of jobs,
the summed and the longest job wall time, and the peak resident memory of one job. The
jobs are watched from outside with psutil (every 0.1 s: each job is a
``python .snakemake/scripts/tmpXXXX.<script>.py`` process), so the workflow runs
unchanged. The run's peak memory is the largest sum of resident memory of Snakemake and
all its jobs at one instant. With two sizes, ``growth`` is the ratio of a stage's summed
time (large / small) beside the n log n ratio: a stage growing faster is flagged.

Targets (issue 9): 100k patients in <= 3 min and <= 4 GB on 2 cores; the demo from clean
<= 60 s and a no-op rerun <= 5 s. ``--set`` overrides config keys for the large runs
(e.g. fewer bootstrap replicates); the overrides are printed with the results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
PARTS = (
    "Snakefile",
    "config",
    "workflow",
    "src",
    "pyproject.toml",
    "requirements.in",
    "requirements.lock",
)
SCRIPT = re.compile(r"\.snakemake/scripts/tmp[^/]*?\.([A-Za-z0-9_]+)\.py")
TARGETS = {"time_s": 180.0, "rss_gb": 4.0, "demo_clean_s": 60.0, "demo_noop_s": 5.0}


def make_project(dest: Path, data_dir: Path | None, overrides: dict[str, str]) -> Path:
    """A copy of the project whose config points at ``data_dir`` (None: the demo)."""
    dest.mkdir(parents=True)
    for part in PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / part)
    shutil.copytree(ROOT / "resources" / "published", dest / "resources" / "published")
    if data_dir is None:
        shutil.copytree(ROOT / "resources" / "demo", dest / "resources" / "demo")
    cfg_path = dest / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    if data_dir is not None:
        for site, entry in cfg["sites"].items():
            entry["data_dir"] = str(data_dir / site)
    for key, value in overrides.items():
        node = cfg
        *path, last = key.split(".")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = yaml.safe_load(value)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), "utf-8")
    return dest


def run_watched(project: Path, cores: int) -> dict:
    """Run snakemake in ``project``; return wall time, peak memory and per-stage figures."""
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    top = psutil.Process(proc.pid)
    jobs: dict[int, dict] = {}  # pid -> {stage, start, end, rss}
    peak_total = 0
    while proc.poll() is None:
        now = time.perf_counter()
        total = 0
        try:
            procs = [top, *top.children(recursive=True)]
        except psutil.Error:
            procs = [top]
        for p in procs:
            try:
                rss = p.memory_info().rss
                total += rss
                if p.pid not in jobs:
                    m = SCRIPT.search(" ".join(p.cmdline()))
                    jobs[p.pid] = {"stage": m.group(1) if m else None, "start": now, "rss": 0}
                j = jobs[p.pid]
                j["end"] = now
                j["rss"] = max(j["rss"], rss)
            except psutil.Error:
                continue
        peak_total = max(peak_total, total)
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    stages: dict[str, dict] = {}
    for j in jobs.values():
        if not j["stage"]:
            continue
        s = stages.setdefault(j["stage"], {"jobs": 0, "sum_s": 0.0, "max_s": 0.0, "rss_mb": 0.0})
        dt = j["end"] - j["start"]
        s["jobs"] += 1
        s["sum_s"] += dt
        s["max_s"] = max(s["max_s"], dt)
        s["rss_mb"] = max(s["rss_mb"], j["rss"] / 2**20)
    return {
        "returncode": proc.returncode,
        "wall_s": wall,
        "peak_rss_mb": peak_total / 2**20,
        "stages": stages,
        "tail": out[-3000:],
    }


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONPATH": str(cwd / "src")}
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - t, p


def print_run(title: str, r: dict) -> None:
    print(
        f"\n## {title}: {'OK' if r['returncode'] == 0 else 'FAILED'} - wall "
        f"{r['wall_s']:.1f} s, peak memory (all processes) {r['peak_rss_mb']:.0f} MB"
    )
    print(f"{'stage':<28}{'jobs':>5}{'sum s':>9}{'max s':>9}{'peak MB':>9}")
    for name, s in sorted(r["stages"].items(), key=lambda kv: -kv[1]["sum_s"]):
        print(f"{name:<28}{s['jobs']:>5}{s['sum_s']:>9.1f}{s['max_s']:>9.1f}{s['rss_mb']:>9.0f}")
    if r["returncode"] != 0:
        print(r["tail"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--demo", action="store_true", help="also time the demo: clean and no-op")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for the generated cohorts, e.g. bootstrap.replicates=20",
    )
    ap.add_argument("--workdir", help="keep the projects here (default: a temporary folder)")
    ap.add_argument("--json", help="write the figures to this JSON file")
    a = ap.parse_args(argv)
    overrides = dict(kv.split("=", 1) for kv in a.set)
    work = Path(a.workdir or tempfile.mkdtemp(prefix="pannet-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"cores": a.cores, "overrides": overrides, "targets": TARGETS, "runs": {}}
    print(
        f"# pannet scale benchmark ({a.cores} cores; overrides {overrides or 'none'}); "
        f"work folder {work}"
    )

    if a.demo:
        proj = make_project(work / "demo", None, {})
        r = run_watched(proj, a.cores)
        print_run("demo (733 rows) from clean", r)
        noop_s, noop = timed(
            [sys.executable, "-m", "snakemake", "--cores", str(a.cores), "--quiet"], proj
        )
        print(f"demo no-op rerun: {noop_s:.1f} s (rc {noop.returncode})")
        r["noop_s"] = noop_s
        report["runs"]["demo"] = r

    for n in a.sizes:
        data = work / f"data-{n}"
        if not data.exists():
            gen_s, g = timed(
                [
                    sys.executable,
                    "-m",
                    "pannet.demo",
                    "--patients",
                    str(n),
                    "--out",
                    str(data),
                    "--no-readme",
                ],
                ROOT,
            )
            if g.returncode != 0:
                print(g.stderr)
                return 1
            print(f"\ngenerated {n} patients in {gen_s:.1f} s")
        proj = make_project(work / f"project-{n}", data, overrides)
        r = run_watched(proj, a.cores)
        print_run(f"{n} patients from clean", r)
        report["runs"][str(n)] = r

    sizes = [str(n) for n in a.sizes if str(n) in report["runs"]]
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        n0, n1 = int(small), int(large)
        nlogn = (n1 * math.log(n1)) / (n0 * math.log(n0))
        print(f"\n## growth {small} -> {large} (n log n ratio {nlogn:.1f})")
        s0, s1 = report["runs"][small]["stages"], report["runs"][large]["stages"]
        for name in sorted(s1, key=lambda k: -s1[k]["sum_s"]):
            if name in s0 and s0[name]["sum_s"] > 0:
                g = s1[name]["sum_s"] / s0[name]["sum_s"]
                flag = "  <-- faster than n log n" if g > nlogn * 1.2 else ""
                print(f"{name:<28}{g:>8.1f}x{flag}")
    for key, r in report["runs"].items():
        big = key not in ("demo",)
        verdict = []
        if big and int(key) >= 100_000:
            verdict.append(
                f"time {'OK' if r['wall_s'] <= TARGETS['time_s'] else 'OVER'} "
                f"({r['wall_s']:.0f} s / {TARGETS['time_s']:.0f} s)"
            )
            verdict.append(
                f"memory {'OK' if r['peak_rss_mb'] <= TARGETS['rss_gb'] * 1024 else 'OVER'}"
                f" ({r['peak_rss_mb']:.0f} MB / {TARGETS['rss_gb'] * 1024:.0f} MB)"
            )
        if key == "demo":
            verdict.append(
                f"clean {'OK' if r['wall_s'] <= TARGETS['demo_clean_s'] else 'OVER'} "
                f"({r['wall_s']:.0f} s / {TARGETS['demo_clean_s']:.0f} s)"
            )
            verdict.append(
                f"no-op {'OK' if r['noop_s'] <= TARGETS['demo_noop_s'] else 'OVER'} "
                f"({r['noop_s']:.1f} s / {TARGETS['demo_noop_s']:.0f} s)"
            )
        if verdict:
            print(f"target check {key}: " + "; ".join(verdict))
    if a.json:
        for r in report["runs"].values():
            r.pop("tail", None)
        Path(a.json).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0 if all(r["returncode"] == 0 for r in report["runs"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
