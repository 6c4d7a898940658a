"""Wall time and peak memory of every stage of `dvc repro`, in a fresh copy of the project.

    .venv/bin/python benchmarks/bench_pipeline.py [--size default|small|tiny] [--keep DIR]

Copies the tracked files into a temporary git + DVC project, sets
``sample.size``, then runs ``dvc repro --single-item STAGE`` for each stage in
pipeline order under GNU time, so the peak resident memory covers the stage's
own processes (DVC's wait4 reports the largest of the process tree). Prints a
table and the whole-pipeline wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def project(size: str, where: Path) -> dict:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if f == "dvc.lock" or f.startswith(("data/", "reports/")):
            continue
        (where / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, where / f)
    params = yaml.safe_load((where / "params.yaml").read_text())
    params["sample"]["size"] = size
    (where / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=where, env=env, check=True)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="default", choices=["tiny", "small", "default"])
    ap.add_argument("--keep", type=Path, help="run in this (empty) folder and keep it")
    args = ap.parse_args()
    where = args.keep or Path(tempfile.mkdtemp(prefix="cmisc-bench-"))
    where.mkdir(parents=True, exist_ok=True)
    env = project(args.size, where)
    stages = list(yaml.safe_load((where / "dvc.yaml").read_text())["stages"])
    rows, t_all = [], time.perf_counter()
    for stage in stages:
        t0 = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-v", str(BIN / "dvc"), "repro", "--single-item", stage],
                              cwd=where, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(f"stage {stage} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
        rows.append((stage, wall, peak / 1024))
        print(f"{stage:12} {wall:8.1f} s {peak / 1024:8.0f} MB", flush=True)
    total = time.perf_counter() - t_all
    print(f"\nsample world {args.size}, {os.cpu_count()} cores: whole pipeline {total / 60:.1f} min")
    print("| stage | wall s | peak RSS MB |\n|---|---|---|")
    for stage, wall, mb in rows:
        print(f"| {stage} | {wall:.1f} | {mb:.0f} |")
    if not args.keep:
        shutil.rmtree(where)


if __name__ == "__main__":
    main()
