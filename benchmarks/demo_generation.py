"""Time to generate a synthetic cohort in the three site formats (default 100,000 rows).

Usage: ``python benchmarks/demo_generation.py [N] [--read]``. Prints wall and CPU time of
``pannet.demo.generate`` (and, with ``--read``, of reading the exports back through the
site dictionaries with ``pannet.sites.read_raw`` + ``to_cdm``). Issue 2 asks for under a
minute at 100k.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from pannet import sites
from pannet.config import PROJECT_ROOT
from pannet.demo import generate


def main(argv: list[str]) -> int:
    n = int(next((a for a in argv if a.isdigit()), 100_000))
    with tempfile.TemporaryDirectory() as tmp:
        w, c = time.perf_counter(), time.process_time()
        generate(tmp, n_patients=n, readme=False)
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
        print(
            f"generate {n} patients (uppsala csv, gothenburg xlsx, boston redcap): "
            f"{wall:.1f} s wall, {cpu:.1f} s cpu, {size / 1e6:.1f} MB"
        )
        if "--read" in argv:
            for s in ("uppsala", "gothenburg", "boston"):
                cfg = {
                    "dictionary": str(PROJECT_ROOT / f"config/sites/{s}.yaml"),
                    "data_dir": str(Path(tmp) / s),
                }
                w = time.perf_counter()
                d = sites.load_dictionary(cfg["dictionary"])
                p, t, i = sites.to_cdm(s, sites.read_raw(s, cfg, d), d)
                print(
                    f"read + to_cdm {s}: {len(p)} patients, {len(t)} treatments, "
                    f"{len(i)} issues in {time.perf_counter() - w:.1f} s"
                )
    return 0 if wall < 60 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
