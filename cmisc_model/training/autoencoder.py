"""``cmisc train-ae``: train the autoencoder (paper §4.1, Fig. 4a) on the corpus.

    cmisc train-ae --corpus data/corpus/corpus.parquet --vocab data/vocab \\
        --out models/autoencoder [--live-dir reports/autoencoder] [--params params.yaml] [--resume]

Training (params ``autoencoder.train``, recipes in ``cmisc_model/training/optim.py``):
AdamW with warm-up and a cosine decay by steps, batch 16, gradient norm
clipped at 5; loss = text cross-entropy + ``image_loss_weight`` x image MSE +
``matching_weight`` x image-text matching BCE. The 2017 recipe (SGD, lr 0.1
halved after each epoch, no matching) is the ``paper2017`` preset
(``cmisc preset paper2017``). The encoder's word table starts from Word2Vec.
Image MSE is reported beside the MSE of the training set's mean image (and
as R² against it): a decoder that is no better than the mean image has not
learnt the image. The validation split is evaluated before the first step and after
every epoch; DVCLive logs the loss terms per step and per epoch and, in the
summary, the relative drops from that first evaluation (the paper reports
image -16.6 %, text -5.5 %).

Outputs in ``--out`` (a self-contained model folder, which ``cmisc embed``
reads): ``model.pt`` (the checkpoint with the best validation loss),
``last.pt`` (for ``--resume``; written every ``checkpoint_every`` steps and
after each epoch), ``config.json``, and copies of ``vocab.parquet`` and
``word2vec.parquet``. In ``--live-dir``: ``metrics.json`` (the DVC metric: the
key figures of ``KEY_METRICS`` only), ``details.json`` (everything DVCLive
logged, last values), ``timings.json``, ``probe.json``,
``plots/metrics/**.tsv`` and ``plots/images/reconstructions.png`` (paper Fig. 5).

Resume is exact: model, optimizer, scheduler, step, epoch, position within the
epoch and the RNG states are restored, and the data order and augmentation
are functions of (seed, epoch, index), so a resumed run takes the same next
step as an uninterrupted one.

Devices: CUDA when available (bf16 autocast, channels-last images), else CPU
with one torch thread per available core. Several processes:
``torchrun --standalone --nproc-per-node=N -m cmisc_model.training.autoencoder ...``
(nccl on CUDA, gloo on CPU); each rank gets ``batch_size`` samples a step and
only rank 0 writes files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from cmisc_model import schemas as S
from cmisc_model.config import BaseConfig, load_section
from cmisc_model.corpus.vocab import read_vocab
from cmisc_model.errors import CmiscError
from cmisc_model.models.autoencoder import AEOutput, Autoencoder
from cmisc_model.models.config import ModelConfig
from cmisc_model.models.encoders import load_word2vec
from cmisc_model.text.normalise import TextConfig, TextNormaliser
from cmisc_model.training.checkpoint import (
    check_compatible,
    load_checkpoint,
    load_model_state,
    plain_config,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cmisc_model.training.data import (
    AutoencoderDataset,
    BucketBatchSampler,
    DataConfig,
    collate,
    load_image,
    usable_rows,
)
from cmisc_model.training.determinism import make_deterministic
from cmisc_model.training.optim import build_optimizer, build_scheduler
from cmisc_model.training.runtime import amp_context, setup_distributed

log = logging.getLogger(__name__)

STEP_KEYS = ("loss", "text_loss", "image_loss", "match_loss", "match_accuracy", "region_words_loss")


# What the declared DVC metric keeps (DVCLive's summary, pruned at the end): every key
# of a metrics file is a column of `dvc metrics show` and `dvc exp show`.
KEY_METRICS = {"val": ("loss", "text_perplexity", "image_mse_vs_mean", "match_accuracy"),
               "grounding": ("accuracy",)}


def key_metrics(summary: dict) -> dict:
    """DVCLive's nested summary -> the ``KEY_METRICS`` figures (and the step)."""
    out: dict = {"step": summary["step"]} if "step" in summary else {}
    for group, keys in KEY_METRICS.items():
        kept = {k: summary[group][k] for k in keys if k in summary.get(group, {})}
        if kept:
            out[group] = kept
    return out


@dataclass
class TrainConfig:
    """params ``autoencoder.train`` (2017 values where the paper gives them)."""

    optimizer: Literal["sgd", "adamw"] = "adamw"  # 2017: sgd
    lr: float = 0.001  # 2017: 0.1
    weight_decay: float = 0.01  # 2017: 0
    schedule: Literal["epoch", "cosine"] = "cosine"  # 2017: epoch (x lr_decay after each epoch)
    lr_decay: float = 0.5  # schedule "epoch": multiply the rate by this after each epoch (2017: halved)
    warmup_steps: int = 50  # schedule "cosine": linear warm-up, then cosine decay to min_lr_ratio x lr
    min_lr_ratio: float = 0.05
    momentum: float = 0.0  # sgd only (2017: plain SGD)
    batch_size: int = 16  # per process (2017: 16)
    eval_batch_size: int = 32
    clip_norm: float = 5.0  # global gradient norm (2017)
    epochs: int = 2  # sample world: ~180 steps per epoch (3 before the region word phase paid for it)
    max_steps: int | None = None  # stop after this many optimizer steps (None = run all epochs)
    log_every: int = 10  # steps between DVCLive train rows (means over those steps)
    checkpoint_every: int = 100  # steps between last.pt writes (also written after each epoch)
    reconstructions: int = 8  # validation samples in reconstructions.png
    # Grounding phase after training (cross-attention only; cmisc_model/training/grounding.py;
    # departure from 2017): the selected model's sentence side is trained to match
    # texts to their own images on fixed, cached regions. 0 = off.
    ground_epochs: int = 20
    ground_batch: int = 128  # texts per step; each picks its image among this many
    ground_lr: float = 0.003
    # Grounding before training too (0 = off): the untrained CNN's regions already show colour
    # and place, so position words find their cell in a few epochs, and region word prediction
    # then learns from the region a sentence is about rather than from a blur of all nine.
    pre_ground_epochs: int = 10
    # The region word phase after training (grounding.teach_regions; departure from 2017; with
    # region word prediction and the grounding phase only; 0 = off): the image encoder trained
    # on region words alone, before the grounding phase runs on its new regions. In the joint
    # loss shapes stayed near chance.
    region_words_steps: int = 700
    region_words_lr: float = 0.001


@dataclass
class AutoencoderParams:
    """The ``autoencoder`` section of params.yaml."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)


# --------------------------------------------------------------------------- setup


def corpus_rows(path: Path) -> list[dict]:
    table = S.read_table(path, S.CORPUS)
    cols = ["pair_id", "source", "text_blocks", "image_path", "image_status", "split"]
    return table.select(cols).to_pylist()


def make_loader(dataset, sampler, num_workers: int, seed: int, epoch: int, cuda: bool) -> DataLoader:
    # Its own generator: creating the iterator must not draw from the global
    # torch RNG, or a resumed run's dropout would drift from the original.
    g = torch.Generator().manual_seed(seed * 7919 + epoch)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers,
                      pin_memory=cuda, generator=g, persistent_workers=False)


def to_device(batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    images = batch["images"].to(device, non_blocking=True)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    return images, batch["tokens"].to(device, non_blocking=True)


def compute_loss(model: torch.nn.Module, batch: dict, device: torch.device) -> AEOutput:
    """One forward pass (the test suite monkeypatches this to inject a NaN)."""
    images, tokens = to_device(batch, device)
    with amp_context(device):
        return model(images, tokens, image_keys=batch.get("image_keys"))


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio for images in [-1, 1] (peak-to-peak 2)."""
    return 10.0 * math.log10(4.0 / mse) if mse > 0 else float("inf")


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DataLoader, device: torch.device,
             mean_image: torch.Tensor | None = None) -> dict:
    """Token-weighted text cross-entropy, image MSE (and R² against ``mean_image``)
    and image-text matching over the whole loader, in eval mode."""
    was_training = model.training
    model.eval()
    text_sum = image_sum = match_sum = match_acc_sum = mean_sum = 0.0
    n_tokens = n_images = n_batches = 0
    for batch in loader:
        if not batch["pair_ids"]:
            continue
        out = compute_loss(model, batch, device)
        text_sum += float(out.text_loss) * out.n_tokens
        n_tokens += out.n_tokens
        b = len(batch["pair_ids"])
        image_sum += float(out.image_loss) * b
        if mean_image is not None:
            mean_sum += float(((batch["images"].float() - mean_image) ** 2).mean()) * b
        match_sum += float(out.match_loss) * b
        match_acc_sum += float(out.match_accuracy) * b
        n_images += b
        n_batches += 1
    model.train(was_training)
    text_loss = text_sum / max(n_tokens, 1)
    mse = image_sum / max(n_images, 1)
    cfg = _unwrap(model).cfg
    result = {
        "loss": text_loss + cfg.image_loss_weight * mse + cfg.matching_weight * match_sum / max(n_images, 1),
        "text_loss": text_loss,
        "text_perplexity": math.exp(min(text_loss, 50.0)),
        "image_mse": mse,
        "image_psnr": psnr(mse),
        "match_loss": match_sum / max(n_images, 1),
        "match_accuracy": match_acc_sum / max(n_images, 1),
    }
    if mean_image is not None:
        # R² against the training set's mean image: 0 = no better than the mean, 1 = perfect.
        result["mean_image_mse"] = mean_sum / max(n_images, 1)
        result["image_r2"] = 1.0 - mse / result["mean_image_mse"] if result["mean_image_mse"] > 0 else 0.0
    return result


@torch.no_grad()
def mean_image(dataset: AutoencoderDataset, limit: int = 512) -> torch.Tensor | None:
    """The mean centre-cropped image of (up to ``limit``) training items: the baseline a decoder must beat."""
    total, n = None, 0
    for i in range(0, len(dataset), max(1, len(dataset) // limit)):
        path = dataset.paths[i]
        try:
            x = load_image(path, dataset.image_size, dataset.resize_factor, train=False)
        except (OSError, ValueError):
            continue
        total = x if total is None else total + x
        n += 1
    return None if total is None else total / n


@torch.no_grad()
def reconstruction_grid(model: torch.nn.Module, dataset: AutoencoderDataset, n: int, device: torch.device):
    """Input | output pairs of the first ``n`` decodable samples, 4 pairs per row (paper Fig. 5)."""
    from PIL import Image

    items = [it for it in (dataset[i] for i in range(min(len(dataset), 4 * n))) if it is not None][:n]
    if not items:
        return None
    batch = collate(items)
    was_training = model.training
    model.eval()
    out = compute_loss(model, batch, device)
    model.train(was_training)
    def to_pil(x: torch.Tensor) -> Image.Image:
        x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        return Image.fromarray(x)
    size, gap, per_row = dataset.image_size, 4, 4
    cols = min(per_row, len(items))
    rows = math.ceil(len(items) / per_row)
    grid = Image.new("RGB", (cols * (2 * size + 3 * gap), rows * (size + gap) + gap), "white")
    for k in range(len(items)):
        x0 = (k % per_row) * (2 * size + 3 * gap) + gap
        y0 = (k // per_row) * (size + gap) + gap
        grid.paste(to_pil(batch["images"][k]), (x0, y0))
        grid.paste(to_pil(out.recon[k]), (x0 + size + gap, y0))
    return grid


@torch.no_grad()
def run_probe(model, rows, vocab, normaliser, cfg, dc, text_cfg, truth, device, limit: int = 1200) -> dict:
    """Linear probes (probe.py): ``article``, the article embedding for scene attributes beside
    text-only probes; ``regions`` (cross-attention), each region vector for what stands there."""
    from cmisc_model.evaluation.ablations import read_scenes
    from cmisc_model.evaluation.baselines import text_features
    from cmisc_model.evaluation.probe import probe, region_probe

    scenes = read_scenes(truth)
    known, _ = usable_rows([r for r in rows if r["pair_id"] in scenes])
    train = [r for r in known if r["split"] == "train"][:limit]
    rest = [r for r in known if r["split"] != "train"]
    ds = AutoencoderDataset(train + rest, vocab, normaliser, cfg.image_size, False, dc.resize_factor)
    loader = DataLoader(ds, batch_sampler=BucketBatchSampler(ds.lengths(), 64, False), collate_fn=collate)
    was_training = model.training
    model.eval()
    embeddings, regions = {}, {}
    for batch in loader:
        if batch["pair_ids"]:
            images, tokens = to_device(batch, device)
            embeddings.update(zip(batch["pair_ids"], model.encode(images, tokens).float().cpu().numpy()))
            cells = model.encoder.image(images)[1]  # (B, G*G, D_i) | None for late fusion
            if cells is not None and cfg.region_grid == 3:
                regions.update(zip(batch["pair_ids"], cells.float().cpu().numpy()))
    model.train(was_training)
    out = {"article": probe(embeddings, text_features(train + rest, text_cfg), train + rest, scenes)}
    if regions:
        out["regions"] = region_probe(regions, train + rest, scenes)
    return out


# --------------------------------------------------------------------------- training

def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def train(
    corpus_path: Path,
    vocab_dir: Path,
    out_dir: Path,
    live_dir: Path | None,
    params: AutoencoderParams,
    text_cfg: TextConfig,
    seed: int,
    resume: bool = False,
    device: str | None = None,
    progress: bool = False,
    on_step: Callable[[int, dict], None] | None = None,
    truth: str | Path | None = None,
) -> dict:
    """The ``autoencoder`` stage. Returns the summary metrics (rank 0's view).

    ``truth``: the sample world's scenes.jsonl; then the article embedding is
    also probed for scene attributes (``probe.json`` in ``live_dir``)."""
    corpus_path, vocab_dir, out_dir = Path(corpus_path), Path(vocab_dir), Path(out_dir)
    tc, dc = params.train, params.data
    d = setup_distributed(device)
    torch.manual_seed(seed + d.rank)
    make_deterministic(seed + d.rank, d.world)  # deterministic ops, fixed threads, seeded RNGs

    # ---- data
    vocab, vhash = read_vocab(vocab_dir)
    cfg = params.model.replace(vocab_size=max(vocab.values()) + 1)
    rows = corpus_rows(corpus_path)
    train_rows, _ = usable_rows([r for r in rows if r["split"] == "train"])
    val_rows, _ = usable_rows([r for r in rows if r["split"] == "val"])
    n_unusable = sum(r["image_status"] != "ok" or not r["image_path"] for r in rows)
    if not train_rows:
        raise CmiscError(f"{corpus_path}: no training rows with image_status 'ok'")
    if not val_rows:
        # A very small corpus may have no validation document; evaluate on a
        # slice of the training rows rather than not at all (said so in the log).
        val_rows = train_rows[: max(1, min(64, len(train_rows) // 10))]
        log.warning("%s: no validation rows with an image; evaluating on %d training rows",
                    corpus_path, len(val_rows))
    normaliser = TextNormaliser(text_cfg)
    train_ds = AutoencoderDataset(train_rows, vocab, normaliser, cfg.image_size, True,
                                  dc.resize_factor, dc.hflip, seed)
    val_ds = AutoencoderDataset(val_rows, vocab, normaliser, cfg.image_size, False, dc.resize_factor)
    train_sampler = BucketBatchSampler(train_ds.lengths(), tc.batch_size, True, seed, d.rank, d.world,
                                       dc.bucket_chunk)
    val_sampler = BucketBatchSampler(val_ds.lengths(), tc.eval_batch_size, False)
    val_loader = make_loader(val_ds, val_sampler, dc.num_workers, seed, 0, d.device.type == "cuda")
    if d.main and d.device.type == "cpu" and dc.num_workers > 0 and os.environ.get("OMP_WAIT_POLICY") is None:
        log.warning("num_workers %d on CPU: worker processes compete with torch's spinning OpenMP "
                    "threads; set OMP_WAIT_POLICY=PASSIVE or num_workers 0", dc.num_workers)
    if d.main:
        log.info("training on %d pairs, validating on %d; %d corpus rows without a usable image",
                 len(train_ds), len(val_ds), n_unusable)

    # ---- model, optimizer
    model = Autoencoder(cfg)
    model.encoder.load_word_vectors(load_word2vec(vocab_dir / "word2vec.parquet", vocab, cfg.init_range))
    model.to(d.device)
    if d.device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer([{"params": [p for p in model.parameters() if p.requires_grad]}], tc)
    per_epoch = train_sampler.batches_per_epoch()
    total_steps = min(tc.epochs * per_epoch, tc.max_steps or tc.epochs * per_epoch)
    scheduler = build_scheduler(optimizer, tc, total_steps, per_epoch)
    baseline_image = mean_image(train_ds)

    step, start_epoch, start_batch = 0, 0, 0
    history: dict = {"first_val": None, "best_val_loss": None, "skipped_images": 0}
    last_path, best_path = out_dir / "last.pt", out_dir / "model.pt"
    last_saved_step: int | None = None
    resuming = resume and last_path.exists()
    if resume and not resuming and d.main:
        log.info("%s does not exist: starting from step 0", last_path)
    if resuming:
        state = load_checkpoint(last_path)  # on CPU: RNG states must stay CPU tensors
        check_compatible(state, cfg, vhash, last_path)
        if state.get("text") != plain_config(text_cfg) and d.main:
            log.warning("%s: the text settings differ from the checkpoint's; the model will see "
                        "differently normalised text", last_path)
        load_model_state(model, state, last_path)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, start_epoch, start_batch = state["step"], state["epoch"], state["batch_in_epoch"]
        history.update(state.get("history", {}))
        if d.rank == 0 or d.world == 1:
            set_rng_state(state["rng"])
        last_saved_step = step
        if d.main:
            log.info("resuming from %s: step %d, epoch %d, batch %d", last_path, step, start_epoch, start_batch)

    if not resuming and tc.pre_ground_epochs > 0 and model.sentence_match_head is not None:
        # before the DDP wrap: every rank grounds, then DDP starts them all from rank 0's weights
        from cmisc_model.training.grounding import ground

        plain = AutoencoderDataset(train_rows, vocab, normaliser, cfg.image_size, False, dc.resize_factor)
        ground(model, plain, tc.pre_ground_epochs, tc.ground_batch, tc.ground_lr, seed, d.device, progress and d.main)

    net = model
    if d.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[d.device.index] if d.device.type == "cuda" else None)

    live = None
    if d.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("vocab.parquet", "word2vec.parquet"):
            # A model folder is self-contained: `cmisc embed` reads the vocabulary from it.
            with S.atomic_path(out_dir / name) as tmp:
                shutil.copyfile(vocab_dir / name, tmp)
        config = {"model": plain_config(cfg), "train": dataclasses.asdict(tc), "data": dataclasses.asdict(dc),
                  "text": plain_config(text_cfg), "vocab_hash": vhash, "seed": seed, "world_size": d.world}
        with S.atomic_path(out_dir / "config.json") as tmp:
            tmp.write_text(json.dumps(config, indent=2) + "\n")
        if live_dir is not None:
            from dvclive import Live

            live = Live(dir=str(live_dir), resume=resuming, dvcyaml=False, save_dvc_exp=False)

    def checkpoint(path: Path, epoch: int, batch_in_epoch: int) -> None:
        nonlocal last_saved_step
        if not d.main:
            return
        save_checkpoint({
            "config": plain_config(cfg),
            "text": plain_config(text_cfg),
            "data": {"image_size": cfg.image_size, "resize_factor": dc.resize_factor},
            "vocab_hash": vhash,
            "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "history": history,
        }, path)
        if path == last_path:
            last_saved_step = step

    def log_metrics(prefix: str, values: dict, plot: bool = True) -> None:
        if live is None:
            return
        live.step = step
        for k, v in values.items():
            live.log_metric(f"{prefix}/{k}", v if isinstance(v, int) else float(v), plot=plot)

    def validate(epoch: int) -> dict:
        val = evaluate(_unwrap(net), val_loader, d.device, baseline_image)
        if history["first_val"] is None:
            history["first_val"] = dict(val)
        log_metrics("val", val)
        if d.main:
            log.info("step %d epoch %d: val loss %.4f, text perplexity %.2f, image MSE %.4f (R² %.3f against "
                     "the mean image), matching accuracy %.3f", step, epoch, val["loss"], val["text_perplexity"],
                     val["image_mse"], val.get("image_r2", float("nan")), val["match_accuracy"])
        return val

    def keep_best(val: dict, epoch: int, batch_in_epoch: int) -> None:
        """model.pt = the checkpoint with the lowest validation loss so far."""
        if history["best_val_loss"] is None or val["loss"] < history["best_val_loss"]:
            history["best_val_loss"] = val["loss"]
            checkpoint(best_path, epoch, batch_in_epoch)

    if history["first_val"] is None:
        validate(0)
        if live is not None:
            live.make_summary()

    # ---- loop
    stopped = False
    last_val: dict | None = None
    def means(sums: dict) -> dict:
        n = max(sums["n"], 1)
        out = {k: sums[k] / n for k in STEP_KEYS}
        out["text_perplexity"] = math.exp(min(out["text_loss"], 50.0))
        out["image_psnr"] = psnr(out["image_loss"])
        return out

    def zeros() -> dict:
        return {**dict.fromkeys(STEP_KEYS, 0.0), "n": 0}

    window, epoch_sums = zeros(), zeros()  # since the last train row / since the epoch began
    train_s, samples = 0.0, 0  # time in the training loop (data loading included, validation not)
    net.train()
    for epoch in range(start_epoch, tc.epochs):
        pos = start_batch if epoch == start_epoch else 0
        train_sampler.set_epoch(epoch, pos)
        train_ds.set_epoch(epoch)
        t_epoch = time.perf_counter()
        loader = make_loader(train_ds, train_sampler, dc.num_workers, seed, epoch, d.device.type == "cuda")
        bar = None
        if progress and d.main:
            from tqdm import tqdm

            bar = tqdm(total=train_sampler.batches_per_epoch(), initial=pos, desc=f"epoch {epoch + 1}/{tc.epochs}",
                       unit="batch", leave=False)
        for batch in loader:
            pos += 1
            if bar is not None:
                bar.update(1)
            history["skipped_images"] += batch["n_skipped"]
            if d.any(not batch["pair_ids"]):
                continue  # every image of this batch (on some rank) failed to decode
            out = compute_loss(net, batch, d.device)
            if d.any(not bool(torch.isfinite(out.loss.detach()))):
                where = (f"the last good checkpoint is {last_path} from step {last_saved_step}"
                         if last_saved_step is not None else f"no checkpoint was written yet ({last_path})")
                raise CmiscError(
                    f"non-finite loss at step {step + 1} (text {out.text_loss.item():.4g}, "
                    f"image {out.image_loss.item():.4g}); {where}")
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm)
            optimizer.step()
            scheduler.step()  # per step (both recipes)
            step += 1
            samples += len(batch["pair_ids"]) * d.world
            values = {"loss": out.loss.item(), "text_loss": out.text_loss.item(),
                      "image_loss": out.image_loss.item(), "match_loss": out.match_loss.item(),
                      "match_accuracy": out.match_accuracy.item(),
                      "region_words_loss": out.region_words_loss.item()}
            for sums in (window, epoch_sums):
                for k, v in values.items():
                    sums[k] += v
                sums["n"] += 1
            if step % tc.log_every == 0:
                row = {**means(window), "lr": optimizer.param_groups[0]["lr"], "grad_norm": float(grad_norm)}
                log_metrics("train", row)
                window = zeros()
                if bar is not None:
                    bar.set_postfix(loss=f"{row['loss']:.3f}")
            if step % tc.checkpoint_every == 0:
                checkpoint(last_path, epoch, pos)
            if on_step is not None:
                on_step(step, values)
            if tc.max_steps is not None and step >= tc.max_steps:
                stopped = True
                break
        train_s += time.perf_counter() - t_epoch
        if epoch_sums["n"]:
            log_metrics("train_epoch", means(epoch_sums))  # means over this epoch's steps
            epoch_sums = zeros()
        if bar is not None:
            bar.close()
        if stopped and pos < train_sampler.batches_per_epoch():
            last_val = validate(epoch)  # stopped mid-epoch by max_steps: resume continues this epoch
            keep_best(last_val, epoch, pos)
            checkpoint(last_path, epoch, pos)
            break
        last_val = validate(epoch + 1)
        keep_best(last_val, epoch + 1, 0)
        checkpoint(last_path, epoch + 1, 0)
        if stopped:
            break

    # ---- outputs (rank 0)
    if last_val is None:  # nothing left to train (resumed after the last epoch)
        last_val = validate(tc.epochs)
        keep_best(last_val, tc.epochs, 0)
    if not best_path.exists():
        checkpoint(best_path, tc.epochs, 0)
    grounding, region_words = None, None
    if d.main and tc.ground_epochs > 0 and model.sentence_match_head is not None:
        from cmisc_model.training.grounding import ground, teach_regions

        best = load_checkpoint(best_path)
        load_model_state(model, best, best_path)
        plain = AutoencoderDataset(train_rows, vocab, normaliser, cfg.image_size, False, dc.resize_factor)
        teaching = tc.region_words_steps > 0 and model.encoder.region_words is not None
        if teaching:
            # where sentences look is already right here (99.5 % of mentions on the sample world),
            # so the phase needs no grounding before it, only after: the regions change
            region_words = teach_regions(model, train_ds, tc.region_words_steps, tc.batch_size,
                                         tc.region_words_lr, seed, d.device, progress)
        grounding = ground(model, plain, tc.ground_epochs, tc.ground_batch, tc.ground_lr, seed, d.device, progress)
        save_checkpoint({**best, "model": model.state_dict(), "grounding": grounding,
                         "region_words": region_words}, best_path)
        if teaching:
            # the image encoder changed after the last validation: validate the model that is kept
            trained, step = step, step + tc.region_words_steps  # its row after the phase's steps
            last_val = validate(tc.epochs)
            step = trained  # the summary and timings count training's steps
    first = history["first_val"]
    summary = {
        "step": step,
        "train_samples_per_s": samples / train_s if train_s > 0 else 0.0,
        "train_seconds": train_s,
        "skipped_images": history["skipped_images"],
        "unusable_rows": n_unusable,
        "val": last_val,
        "val_first": first,
        "val_text_perplexity_drop": (first["text_perplexity"] - last_val["text_perplexity"]) / first["text_perplexity"],
        "val_image_mse_drop": (first["image_mse"] - last_val["image_mse"]) / first["image_mse"],
        # The figure that says whether the decoder learnt the image: < 1 beats the mean image.
        "val_image_mse_vs_mean": (last_val["image_mse"] / last_val["mean_image_mse"]
                                  if last_val.get("mean_image_mse") else None),
        "grounding": grounding,
        "region_words": region_words,
    }
    if d.main:
        log_metrics("val", {
            "text_perplexity_drop": summary["val_text_perplexity_drop"],
            "image_mse_vs_mean": summary["val_image_mse_vs_mean"] or 0.0,
            "best_loss": history["best_val_loss"],
        }, plot=False)
        log_metrics("data", {"skipped_images": history["skipped_images"], "unusable_rows": n_unusable,
                             "train_pairs": len(train_ds), "val_pairs": len(val_ds)}, plot=False)
        if live is not None and truth:
            probes = run_probe(model, rows, vocab, normaliser, cfg, dc, text_cfg, truth, d.device)
            summary["probe"] = probes
            log_metrics("probe", {f"{k}_{w}": v[w] for k, v in probes["article"].items()
                                  for w in ("embedding", "text_only")}, plot=False)
            log_metrics("probe", {f"region_{k}": v["region"] for k, v in probes.get("regions", {}).items()},
                        plot=False)
            with S.atomic_path(Path(live_dir) / "probe.json") as tmp:
                tmp.write_text(json.dumps(probes, indent=2, sort_keys=True) + "\n")
        if live is not None:
            # Speed is not a result: it lives beside the metrics, not among them, so
            # `dvc metrics diff` and `dvc exp show` do not report it as a change.
            with S.atomic_path(Path(live_dir) / "timings.json") as tmp:
                tmp.write_text(json.dumps({"train_seconds": round(train_s, 1), "train_samples_per_s":
                                           round(summary["train_samples_per_s"], 2), "steps": step}, indent=2) + "\n")
            if grounding is not None:
                log_metrics("grounding", grounding, plot=False)
            if region_words is not None:
                log_metrics("region_words_phase", region_words, plot=False)
            live.make_summary()
            with S.atomic_path(Path(live_dir) / "details.json") as tmp:
                tmp.write_text(json.dumps(live.summary, indent=2, sort_keys=True) + "\n")
            live.summary = key_metrics(live.summary)  # live.end() writes metrics.json from it
            grid = reconstruction_grid(model, val_ds, tc.reconstructions, d.device)
            if grid is not None:
                target = Path(live_dir) / "plots" / "images" / "reconstructions.png"
                with S.atomic_path(target) as tmp:
                    grid.save(tmp, format="PNG")
            live.end()
    if d.world > 1:
        dist.barrier()
    return summary


# --------------------------------------------------------------------------- cli

def cli_main(argv: list[str]) -> int:
    """The options are in ``cmisc_model/commands.py`` (parsed there without torch for ``cmisc``)."""
    from cmisc_model.commands import train_ae_parser

    return run(train_ae_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    params = load_section(AutoencoderParams, "autoencoder", args.params)
    text_cfg = load_section(TextConfig, "text", args.params)
    seed = load_section(BaseConfig, "base", args.params).seed
    summary = train(args.corpus, args.vocab, args.out, args.live_dir, params, text_cfg, seed,
                    resume=args.resume, device=args.device, progress=True, truth=args.truth or None)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2))
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


def main() -> int:
    """``python -m cmisc_model.training.autoencoder`` (what torchrun starts on each rank)."""
    from cmisc_model.errors import USER_ERRORS

    try:
        return cli_main(sys.argv[1:])
    except USER_ERRORS as e:
        print(f"cmisc train-ae: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
