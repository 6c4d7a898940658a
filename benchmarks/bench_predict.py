"""Throughput of the trained classifier: ``cmisc predict --pairs`` and the
classifier stage's training, in pairs per second, on the outputs of
``make repro`` (run it first).

    .venv/bin/python benchmarks/bench_predict.py
    .venv/bin/python benchmarks/bench_predict.py --pairs data/heldout/labelled.parquet --batch-sizes 1 32

``predict``: every pair of ``--pairs`` (default: the 2,000 held-out pairs) is
read, decoded, tokenised and scored (what a user's batch run does, Parquet
write excluded), once per batch size; the AE-initialised model and the no-AE
model (the same encoder shapes, trained from scratch) are the two peers.
``train``: one repeat of the classifier stage (``train_repeat``, the
parameters of params.yaml) on the labelled split: the frozen encoder's one
pass over the items (``freeze_features`` caches it) and the epochs of the head
on the cache, counted as training pairs x epochs / seconds.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from cmisc_model import schemas as S
from cmisc_model.config import BaseConfig, load_section
from cmisc_model.corpus.annotations import repeat_split
from cmisc_model.corpus.assemble import CorpusConfig
from cmisc_model.inference.predict import LoadedModel, score_rows
from cmisc_model.training.autoencoder import AutoencoderParams
from cmisc_model.training.classifier import ClassifierParams, read_autoencoder, train_repeat
from cmisc_model.training.determinism import make_deterministic
from cmisc_model.training.runtime import machine_line


def bench_predict(model_dir: Path, rows: list[dict], batch_size: int) -> float:
    m = LoadedModel(model_dir, "cpu")
    score_rows(m, rows[: 2 * batch_size], batch_size)  # warm-up: first-call allocations
    start = time.perf_counter()
    scored = score_rows(m, rows, batch_size)
    seconds = time.perf_counter() - start
    assert sum(r["scored"] for r in scored) == len(rows), "some pairs were not scored"
    return len(rows) / seconds


def bench_train(params_path: Path, labelled: Path, ae_dir: Path) -> tuple[float, float, int]:
    """(pairs/s over the whole repeat, seconds, training pairs) of repeat 0."""
    params = load_section(ClassifierParams, "classifier", params_path)
    seed = load_section(BaseConfig, "base", params_path).seed
    split_cfg = load_section(CorpusConfig, "corpus", params_path).labelled
    data_cfg = load_section(AutoencoderParams, "autoencoder", params_path).data
    make_deterministic(seed)
    rows = S.read_table(labelled, S.LABELLED).to_pylist()
    split_rows = repeat_split(rows, seed, 0, split_cfg)
    start = time.perf_counter()
    res = train_repeat(read_autoencoder(ae_dir), split_rows, params, data_cfg, "autoencoder", seed,
                       torch.device("cpu"))
    seconds = time.perf_counter() - start
    return res["n_train"] * len(res["history"]) / seconds, seconds, res["n_train"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=Path, default=Path("data/heldout/labelled.parquet"))
    ap.add_argument("--models", type=Path, nargs="+", default=[Path("models/classifier"),
                                                              Path("models/classifier_no_ae")])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--labelled", type=Path, default=Path("data/corpus/labelled.parquet"))
    ap.add_argument("--autoencoder", type=Path, default=Path("models/autoencoder"))
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    make_deterministic(0)
    print(f"machine: {machine_line()}")
    rows = S.read_table(args.pairs, S.LABELLED).to_pylist()
    print(f"\n| predict --pairs ({len(rows)} pairs of {args.pairs}) | batch | pairs/s |\n|---|---|---|")
    for model_dir in args.models:
        for bs in args.batch_sizes:
            print(f"| {model_dir} | {bs} | {bench_predict(model_dir, rows, bs):.1f} |", flush=True)
    rate, seconds, n_train = bench_train(args.params, args.labelled, args.autoencoder)
    print("\n| classifier training (repeat 0) | training pairs | seconds | pairs/s (x epochs) |\n|---|---|---|---|")
    print(f"| {args.autoencoder} -> head | {n_train} | {seconds:.1f} | {rate:.0f} |")


if __name__ == "__main__":
    main()
