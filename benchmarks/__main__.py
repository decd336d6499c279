"""`python -m benchmarks [--quick] [--only NAME ...] [--out FILE]`: print figures as JSON lines.

The first line describes the machine; each benchmark then prints its figures beside a plain
reference measured in the same process. `--quick` is the small version (under 5 minutes on
2 cores). Progress goes to stderr, figures to stdout (and to --out when given).
"""

from __future__ import annotations

import argparse
import importlib
import time
from dataclasses import asdict

from benchmarks.common import emit, machine, note, tee_to

BENCHMARKS = ("embedding", "training", "query", "mining", "verify", "tsne", "ddp", "memory", "scaling")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes: under 5 minutes on 2 cores")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, metavar="NAME",
                   help=f"run only these ({', '.join(BENCHMARKS)})")
    p.add_argument("--out", help="also append the JSON lines to this file")
    a = p.parse_args(argv)
    out = open(a.out, "a", encoding="utf-8") if a.out else None  # noqa: SIM115 (closed below)
    if out is not None:
        tee_to(out)
    started = time.time()
    m = machine()
    emit("machine", m.cores, "cores", quick=a.quick, command="python -m benchmarks"
         + (" --quick" if a.quick else "") + (f" --only {' '.join(a.only)}" if a.only else ""),
         date=time.strftime("%Y-%m-%d %H:%M"), **asdict(m))
    try:
        for name in a.only or BENCHMARKS:
            t = time.time()
            note(f"{name} ...")
            importlib.import_module(f"benchmarks.{name}").run(a.quick)
            note(f"{name} done in {time.time() - t:.0f} s")
    finally:
        emit("total_seconds", time.time() - started, "s", load_1min_end=machine().load_1min)
        if out is not None:
            out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
