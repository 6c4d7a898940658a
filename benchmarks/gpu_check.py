"""GPU readiness: the 2017 configuration (InceptionV3 at 299 px, sizes of the paper)
trained for a few hundred steps on CUDA with bf16 autocast and channels-last,
at batch 16 and 128; checks that the loss falls and writes images/s and peak
memory as JSON. Run through ``benchmarks/gpu_check.sh`` (which adds torchrun).

    .venv/bin/python benchmarks/gpu_check.py --steps 300 --batch 16 128 --out gpu_check.json

Never part of the test suite: it needs a CUDA device and minutes of it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from bench_train import synthetic_world

from cmisc_model.config import load_section
from cmisc_model.models.config import PAPER_SIZES
from cmisc_model.text.normalise import TextConfig
from cmisc_model.training.autoencoder import AutoencoderParams, train


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, nargs="+", default=[16, 128])
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device; nothing to check")
        return 2
    rank = int(os.environ.get("RANK", "0"))
    results = {"device": torch.cuda.get_device_name(), "world_size": int(os.environ.get("WORLD_SIZE", "1")),
               "torch": torch.__version__, "runs": []}
    for batch in args.batch:
        params = load_section(AutoencoderParams, "autoencoder", args.params)
        params.model = params.model.replace(**PAPER_SIZES)
        params.train.batch_size, params.train.max_steps = batch, args.steps
        params.train.epochs, params.train.checkpoint_every, params.train.log_every = 1000, 10**9, 10**9
        params.data.num_workers = 8
        losses: list[float] = []
        torch.cuda.reset_peak_memory_stats()
        with tempfile.TemporaryDirectory() as tmp:
            corpus, vocab = synthetic_world(Path(tmp), batch * 20 + 16)
            t0 = time.perf_counter()
            summary = train(corpus, vocab, Path(tmp) / "model", None, params, TextConfig(), 0,
                            on_step=lambda step, v, losses=losses: losses.append(v["loss"]))
            wall = time.perf_counter() - t0
        k = max(1, len(losses) // 10)
        first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
        run = {"batch_per_process": batch, "steps": summary["step"], "wall_s": round(wall, 1),
               "images_per_s": round(summary["train_samples_per_s"], 1),
               "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
               "loss_first_10pct": round(first, 4), "loss_last_10pct": round(last, 4), "loss_fell": last < first}
        results["runs"].append(run)
        if rank == 0:
            print(json.dumps(run))
    if rank == 0:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["loss_fell"] for r in results["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
