"""End-to-end training throughput of ``cmisc train-ae``: samples/s of the real
training loop (JPEG decoding, crops, collate, bucketing, forward, backward,
clipping, SGD step), on a synthetic corpus written to a temporary folder.

    .venv/bin/python benchmarks/bench_train.py                       # params.yaml model, workers 0 and 2
    .venv/bin/python benchmarks/bench_train.py --workers 0 2 --steps 40
    .venv/bin/python benchmarks/bench_train.py --inception --steps 3  # 2017 sizes: inception_v3 at 299 px

The synthetic texts look like the sample world's: 2-20 sentences of 5-25
tokens from a 1,500-word vocabulary; images are 160 x 120 JPEGs. The model
and training settings come from params.yaml (``autoencoder``), except
``max_steps``. Throughput counts the training loop only (validation excluded);
the first ``--warmup`` steps are run in a separate, untimed call.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cmisc_model import schemas as S
from cmisc_model.config import load_section
from cmisc_model.models.config import PAPER_SIZES
from cmisc_model.text.normalise import TextConfig
from cmisc_model.training.autoencoder import AutoencoderParams, train


def synthetic_world(root: Path, n: int, n_val: int = 16, vocab_size: int = 1500, seed: int = 0):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab_size)]
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = root / "img" / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(path, "JPEG", quality=90)
        sentences = [" ".join(rng.choice(words, int(rng.integers(5, 26)))) + "."
                     for _ in range(int(rng.integers(2, 21)))]
        rows.append({"pair_id": f"p{i}", "source": "coco", "doc_id": str(i), "position": "lead",
                     "section_path": [], "text_blocks": [{"titles": [], "sentences": sentences}],
                     "image_path": str(path), "image_status": "ok", "split": "val" if i < n_val else "train"})
    S.write_table(S.from_rows(rows, S.CORPUS), root / "corpus.parquet", S.CORPUS)
    tokens = ["<pad>", "<unk>", ".", *words]
    S.write_table(S.from_rows([{"token": t, "id": i, "count": 10} for i, t in enumerate(tokens)], S.VOCAB),
                  root / "vocab" / "vocab.parquet", S.VOCAB)
    vec = rng.normal(0, 0.1, (len(tokens), 300)).astype(np.float32)
    S.write_table(S.from_rows([{"token": t, "id": i, "vector": vec[i].tolist()} for i, t in enumerate(tokens)],
                              S.WORD2VEC), root / "vocab" / "word2vec.parquet", S.WORD2VEC)
    return root / "corpus.parquet", root / "vocab"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--steps", type=int, default=30, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers to compare")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: params)")
    ap.add_argument("--inception", action="store_true", help="the 2017 sizes (inception_v3, 299 px)")
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    params = load_section(AutoencoderParams, "autoencoder", args.params)
    if args.inception:
        params.model = params.model.replace(**PAPER_SIZES)
    if args.batch:
        params.train.batch_size = args.batch
    params.train.epochs = 1000  # never the limit; max_steps is
    params.train.checkpoint_every = 10**9
    params.train.log_every = 10**9
    n = params.train.batch_size * (args.steps + args.warmup + 2) + 16
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"model {params.model.image_encoder} @ {params.model.image_size}px, batch {params.train.batch_size}, "
          f"device {device}, torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        corpus, vocab = synthetic_world(Path(tmp), n)
        print(f"synthetic corpus: {n} pairs in {time.perf_counter() - t0:.1f} s")
        for workers in args.workers:
            params.data.num_workers = workers
            out = Path(tmp) / f"model{workers}"
            # warm-up run (allocations, first JPEG decodes), then a resumed, timed run
            params.train.max_steps = args.warmup
            train(corpus, vocab, out, None, params, TextConfig(), 0, device=device)
            params.train.max_steps = args.warmup + args.steps
            summary = train(corpus, vocab, out, None, params, TextConfig(), 0, resume=True, device=device)
            print(f"num_workers {workers}: {summary['train_samples_per_s']:.1f} samples/s "
                  f"({summary['train_seconds'] / args.steps:.3f} s/step over {args.steps} steps)")


if __name__ == "__main__":
    main()
