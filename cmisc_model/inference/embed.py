"""``cmisc embed``: 2400-d article embeddings of pairs, from a trained autoencoder.

    cmisc embed --model models/autoencoder --pairs PATH --out embeddings.parquet [--batch-size N]

``--model`` is a folder written by ``cmisc train-ae``: ``model.pt`` plus the
``vocab.parquet`` it was trained with (copied there by training, so a model
folder is self-contained). ``--pairs`` is any Parquet file with the PAIRS
columns (a pairs, corpus or labelled file); extra columns are ignored. The
encoder runs in eval mode (no dropout) on the centre crop, with the text
normalised by the checkpoint's own text settings. Rows whose image is not
``ok`` or fails to decode are reported and skipped. Output: EMBEDDINGS
(pair_id, vector[2400]) in the input's row order, written atomically.

Departure from 2017: ``extraction.py`` dropped the last partial batch (80 of
92 test items); every usable row is embedded here.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from cmisc_model import schemas as S
from cmisc_model.config import from_mapping
from cmisc_model.corpus.vocab import vocab_hash
from cmisc_model.errors import CmiscError
from cmisc_model.models.autoencoder import Autoencoder
from cmisc_model.text.normalise import TextConfig, TextNormaliser
from cmisc_model.training.checkpoint import load_checkpoint, load_model_state, model_config
from cmisc_model.training.data import AutoencoderDataset, BucketBatchSampler, collate, usable_rows

log = logging.getLogger(__name__)


def read_pairs(path: Path) -> list[dict]:
    """The PAIRS columns of any pairs-like file, validated."""
    path = Path(path)
    table = S.open_parquet(path, error=CmiscError)
    missing = [c for c in S.PAIRS.names if c not in table.column_names]
    if missing:
        raise CmiscError(f"{path}: not a pairs file, columns {missing} are missing")
    table = S.validate(table.select(S.PAIRS.names), S.PAIRS, str(path))
    return table.select(["pair_id", "source", "text_blocks", "image_path", "image_status"]).to_pylist()


def load_model(model_dir: Path, vocab_dir: Path | None = None, device: str = "cpu"):
    """model.pt + its vocabulary -> (Autoencoder in eval mode, vocab dict, checkpoint)."""
    model_dir = Path(model_dir)
    ckpt_path = model_dir / "model.pt"
    state = load_checkpoint(ckpt_path)
    vocab_path = Path(vocab_dir or model_dir) / "vocab.parquet"
    table = S.read_table(vocab_path, S.VOCAB)
    if vocab_hash(table) != state["vocab_hash"]:
        raise CmiscError(
            f"{ckpt_path}: trained with vocabulary {state['vocab_hash']}, but {vocab_path} is "
            f"{vocab_hash(table)}: token ids would not match")
    vocab = dict(zip(table.column("token").to_pylist(), table.column("id").to_pylist()))
    cfg = model_config(state["config"])
    model = Autoencoder(cfg)
    load_model_state(model, state, ckpt_path)
    model.to(device).eval()
    return model, vocab, state


@torch.no_grad()
def embed(model_dir: Path, pairs_path: Path, out_path: Path, batch_size: int = 64,
          device: str | None = None, vocab_dir: Path | None = None, progress: bool = False) -> dict:
    """Write EMBEDDINGS for every usable row of ``pairs_path``; returns counts."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, vocab, state = load_model(model_dir, vocab_dir, device)
    text_cfg = from_mapping(TextConfig, state.get("text") or {}, f"{model_dir}/model.pt text")
    data = state.get("data") or {}
    rows = read_pairs(pairs_path)
    ok, n_unusable = usable_rows(rows)
    if n_unusable:
        log.warning("%s: %d of %d rows have no usable image (status not 'ok'); skipped",
                    pairs_path, n_unusable, len(rows))
    ds = AutoencoderDataset(ok, vocab, TextNormaliser(text_cfg), model.cfg.image_size, train=False,
                            resize_factor=data.get("resize_factor", 1.15))
    sampler = BucketBatchSampler(ds.lengths(), batch_size, shuffle=False)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=0)
    vectors: dict[str, list[float]] = {}
    n_failed = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(ds), desc="embed", unit="pair")
    for batch in loader:
        n_failed += batch["n_skipped"]
        if batch["pair_ids"]:
            images = batch["images"].to(device)
            if device.startswith("cuda"):
                images = images.contiguous(memory_format=torch.channels_last)
            vec = model.encode(images, batch["tokens"].to(device)).float().cpu()  # (B, 2400)
            vectors.update(zip(batch["pair_ids"], vec.tolist()))
        if bar is not None:
            bar.update(len(batch["pair_ids"]) + batch["n_skipped"])
    if bar is not None:
        bar.close()
    if n_failed:
        log.warning("%s: %d images failed to decode; skipped", pairs_path, n_failed)
    order = [r["pair_id"] for r in ok if r["pair_id"] in vectors]
    table = S.from_rows(({"pair_id": p, "vector": vectors[p]} for p in order), S.EMBEDDINGS, str(out_path))
    S.write_table(table, out_path, S.EMBEDDINGS, metadata={"cmisc.model_step": state["step"],
                                                            "cmisc.vocab_hash": state["vocab_hash"]})
    return {"rows": len(rows), "embedded": len(order), "no_image": n_unusable, "decode_failed": n_failed}


def cli_main(argv: list[str]) -> int:
    """The options are in ``cmisc_model/commands.py`` (parsed there without torch for ``cmisc``)."""
    from cmisc_model.commands import embed_parser

    return run(embed_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = embed(args.model, args.pairs, args.out, args.batch_size, args.device, args.vocab, progress=True)
    print(json.dumps(counts))
    return 0
