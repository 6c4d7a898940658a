"""Repeats on two cores: one run on both cores, or one run per core side by side?

    .venv/bin/python benchmarks/bench_repeats.py                       # after `make repro`
    .venv/bin/python benchmarks/bench_repeats.py --fraction 0.25 --rounds 2

The classifier stages train K independent repeats one after another, each on
all cores (torch's intra-op threads). This measures what running them as
separate processes would give instead: the same ``cmisc train-cl --no-ae``
repeat (the dearest repeat of the pipeline: every network part trains; here
without ablations or the held-out world, on ``--fraction`` of the training
labels) run (a) alone with ``$CMISC_THREADS`` = all cores, (b) alone on one
thread, and (c) as one single-thread process per core at once. It prints the
wall time of each and the throughput of (c) over (a) in repeats per second.
The figures of a run depend on its thread count (a parallel sum adds in
another order), so (a) and (c) are two different, each reproducible, results.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train_cl(out: Path, threads: int, fraction: float, labelled: Path, vocab: Path) -> subprocess.Popen:
    env = {**os.environ, "CMISC_THREADS": str(threads), "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, "-m", "cmisc_model.cli", "train-cl", "--no-ae", "--repeats", "1",
           "--train-fraction", str(fraction), "--no-ablations", "--labelled", str(labelled),
           "--vocab", str(vocab), "--out", str(out)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def timed(runs: list[tuple[Path, int]], args) -> float:
    """Start every (out, threads) run at once; the seconds until the last one ends."""
    start = time.perf_counter()
    procs = [train_cl(out, threads, args.fraction, args.labelled, args.vocab) for out, threads in runs]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"train-cl failed (exit {p.returncode}):\n{err[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labelled", type=Path, default=Path("data/corpus/labelled.parquet"))
    p.add_argument("--vocab", type=Path, default=Path("data/vocab"))
    p.add_argument("--fraction", type=float, default=0.5, help="share of the training labels per repeat")
    p.add_argument("--rounds", type=int, default=1, help="measure each setting this many times, keep the best")
    args = p.parse_args()
    from cmisc_model.training.runtime import machine, machine_line

    m = machine()
    cores = m["cores"]
    print(machine_line(m))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        settings = {
            f"1 run, {cores} threads": [(out / "a", cores)],
            "1 run, 1 thread": [(out / "b", 1)],
            f"{cores} runs at once, 1 thread each": [(out / f"c{i}", 1) for i in range(cores)],
        }
        best = {name: min(timed(runs, args) for _ in range(args.rounds)) for name, runs in settings.items()}
    print(f"\nno-AE repeat at {args.fraction:g} of the training labels, best of {args.rounds}")
    print(f"{'setting':<34} {'wall s':>8} {'repeats/s':>10}")
    for (name, runs), seconds in zip(settings.items(), best.values()):
        print(f"{name:<34} {seconds:8.1f} {len(runs) / seconds:10.4f}")
    a, c = best[f"1 run, {cores} threads"], best[f"{cores} runs at once, 1 thread each"]
    print(f"\nthroughput, {cores} single-thread processes over 1 process on {cores} threads: "
          f"{cores * a / c:.2f}x")


if __name__ == "__main__":
    main()
