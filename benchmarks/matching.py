"""Benchmark: greedy caliper matching (pannet.matching.match_nearest) at 10k, 100k and 1M units.

Run: ``.venv/bin/python benchmarks/matching.py [--repeat 3] [--no-r]``. A quarter of the units
are treated; the distance is a normal logit with the treated shifted by 0.5. The same run
times the R reference matcher (the literal MatchIt-semantics greedy loop of
tests/test_matching_reference.py) on the 10k data and checks it returns the same pairs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pannet.matching import match_nearest_arrays  # noqa: E402

R_CODE = r"""
args <- commandArgs(TRUE); x <- read.csv(args[1])
greedy <- function(d, treat, cal, ord) {
  i1 <- which(treat == 1); i0 <- which(treat == 0)
  used <- rep(FALSE, length(d)); out <- matrix(NA_integer_, length(ord), 2); n <- 0
  for (k in ord) {
    t <- i1[k]; free <- i0[!used[i0]]
    if (!length(free)) break
    diff <- abs(d[free] - d[t]); ok <- diff <= cal
    if (!any(ok)) next
    j <- free[ok][which.min(diff[ok])]; used[j] <- TRUE; n <- n + 1; out[n, ] <- c(t, j)
  }
  out[seq_len(n), , drop = FALSE]
}
t0 <- proc.time()[["elapsed"]]
cal <- 0.2 * sd(x$d)
g <- greedy(x$d, x$treat, cal, order(x$d[x$treat == 1], decreasing = TRUE))
el <- proc.time()[["elapsed"]] - t0
cat(el, "\n", file = args[2]); write.csv(g, args[3], row.names = FALSE)
"""


def make_data(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    t = np.zeros(n, bool)
    t[rng.choice(n, n // 4, replace=False)] = True
    d = rng.normal(size=n) + 0.5 * t
    return d, t


def time_python(n: int, repeat: int) -> tuple[float, int]:
    d, t = make_data(n)
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        tp, _, _, _ = match_nearest_arrays(d, t, caliper=0.2)
        best = min(best, time.perf_counter() - start)
    return best, int(tp.size)


def time_r(n: int) -> tuple[float, bool] | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    d, t = make_data(n)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.savetxt(
            tmp / "x.csv", np.c_[d, t], delimiter=",", header="d,treat", comments="", fmt="%.17g"
        )
        (tmp / "b.R").write_text(R_CODE)
        subprocess.run(
            [rscript, "--vanilla", tmp / "b.R", tmp / "x.csv", tmp / "t.txt", tmp / "g.csv"],
            check=True,
        )
        elapsed = float((tmp / "t.txt").read_text())
        g = np.loadtxt(tmp / "g.csv", delimiter=",", skiprows=1, dtype=np.int64).reshape(-1, 2) - 1
    tp, cp, _, _ = match_nearest_arrays(d, t, caliper=0.2)
    same = sorted(zip(tp.tolist(), cp.tolist(), strict=True)) == sorted(map(tuple, g.tolist()))
    return elapsed, same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()
    rows = []
    for n in (10_000, 100_000, 1_000_000):
        sec, pairs = time_python(n, args.repeat)
        rows.append({"n": n, "treated": n // 4, "pairs": pairs, "python_s": round(sec, 4)})
        print(
            f"pannet  n={n:>9,}  treated={n // 4:>7,}  pairs={pairs:>7,}  {sec:8.3f} s", flush=True
        )
    if not args.no_r:
        r = time_r(10_000)
        if r is None:
            print("R      Rscript not found: reference timing skipped")
        else:
            el, same = r
            ratio = el / rows[0]["python_s"]
            rows[0].update({"r_greedy_s": el, "r_over_python": round(ratio, 1), "same_pairs": same})
            print(
                f"R greedy reference  n=   10,000  {el:8.3f} s  "
                f"(R / pannet = {ratio:.0f}x; identical pairs: {same})"
            )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
