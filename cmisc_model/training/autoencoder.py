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
from typing import TYPE_CHECKING, Literal

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
from cmisc_model.training.runtime import Dist, amp_context, machine, setup_distributed

if TYPE_CHECKING:
    from dvclive import Live

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
    epochs: int = 2  # sample world: ~180 steps per epoch (1 epoch: CMI 3.4 points lower on the held-out world)
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
    images = batch["images"].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
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


def _zeros() -> dict:
    return {**dict.fromkeys(STEP_KEYS, 0.0), "n": 0}


def _means(sums: dict) -> dict:
    n = max(sums["n"], 1)
    out = {k: sums[k] / n for k in STEP_KEYS}
    out["text_perplexity"] = math.exp(min(out["text_loss"], 50.0))
    out["image_psnr"] = psnr(out["image_loss"])
    return out


@dataclass
class _Data:
    """The corpus as training reads it."""

    vocab: dict[str, int]
    vocab_hash: str
    cfg: ModelConfig  # params' model with the vocabulary's size
    rows: list[dict]
    train_rows: list[dict]
    n_unusable: int
    normaliser: TextNormaliser
    train_ds: AutoencoderDataset
    val_ds: AutoencoderDataset
    train_sampler: BucketBatchSampler
    val_loader: DataLoader


@dataclass
class _Run:
    """One training run: what its setup built and what its steps change."""

    d: Dist
    tc: TrainConfig
    dc: DataConfig
    text_cfg: TextConfig
    seed: int
    data: _Data
    model: Autoencoder
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    baseline_image: torch.Tensor | None
    out_dir: Path
    live_dir: Path | None
    progress: bool
    on_step: Callable[[int, dict], None] | None
    net: torch.nn.Module | None = None  # the model, DDP-wrapped with several processes
    live: Live | None = None  # rank 0 with a live_dir only
    step: int = 0
    start_epoch: int = 0
    start_batch: int = 0
    history: dict = field(default_factory=lambda: {"first_val": None, "best_val_loss": None, "skipped_images": 0})
    last_saved_step: int | None = None
    window: dict = field(default_factory=_zeros)  # step sums since the last train row
    epoch_sums: dict = field(default_factory=_zeros)  # step sums since the epoch began
    train_s: float = 0.0  # time in the training loop (data loading included, validation not)
    samples: int = 0

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "model.pt"


def _load_data(corpus_path: Path, vocab_dir: Path, params: AutoencoderParams, text_cfg: TextConfig,
               seed: int, d: Dist) -> _Data:
    tc, dc = params.train, params.data
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
    return _Data(vocab, vhash, cfg, rows, train_rows, n_unusable, normaliser, train_ds, val_ds,
                 train_sampler, val_loader)


def _build_run(data: _Data, vocab_dir: Path, params: AutoencoderParams, d: Dist, **run) -> _Run:
    """The model (word table from Word2Vec), its optimiser and schedule, and the mean image."""
    tc, cfg = params.train, data.cfg
    model = Autoencoder(cfg)
    model.encoder.load_word_vectors(load_word2vec(vocab_dir / "word2vec.parquet", data.vocab, cfg.init_range))
    # channels-last convolutions (CNN and image decoder): 1.14x faster steps on 2 CPU cores, and a GPU's layout
    model.to(d.device, memory_format=torch.channels_last)
    optimizer = build_optimizer([{"params": [p for p in model.parameters() if p.requires_grad]}], tc)
    per_epoch = data.train_sampler.batches_per_epoch()
    total_steps = min(tc.epochs * per_epoch, tc.max_steps or tc.epochs * per_epoch)
    scheduler = build_scheduler(optimizer, tc, total_steps, per_epoch)
    return _Run(d, tc, params.data, data=data, model=model, optimizer=optimizer, scheduler=scheduler,
                baseline_image=mean_image(data.train_ds), **run)


def _maybe_resume(run: _Run, resume: bool) -> bool:
    """With ``resume`` and a last.pt: restore model, optimiser, schedule, step counts, history
    and RNG state from it -> whether it did."""
    d, last_path = run.d, run.last_path
    resuming = resume and last_path.exists()
    if resume and not resuming and d.main:
        log.info("%s does not exist: starting from step 0", last_path)
    if not resuming:
        return False
    state = load_checkpoint(last_path)  # on CPU: RNG states must stay CPU tensors
    check_compatible(state, run.data.cfg, run.data.vocab_hash, last_path)
    if state.get("text") != plain_config(run.text_cfg) and d.main:
        log.warning("%s: the text settings differ from the checkpoint's; the model will see "
                    "differently normalised text", last_path)
    load_model_state(run.model, state, last_path)
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.step, run.start_epoch, run.start_batch = state["step"], state["epoch"], state["batch_in_epoch"]
    run.history.update(state.get("history", {}))
    if d.rank == 0 or d.world == 1:
        set_rng_state(state["rng"])
    run.last_saved_step = run.step
    if d.main:
        log.info("resuming from %s: step %d, epoch %d, batch %d", last_path, run.step, run.start_epoch,
                 run.start_batch)
    return True


def _plain_train_set(run: _Run) -> AutoencoderDataset:
    """The training rows un-augmented (centre crops, no flip), as the grounding phases read them."""
    data = run.data
    return AutoencoderDataset(data.train_rows, data.vocab, data.normaliser, data.cfg.image_size, False,
                              run.dc.resize_factor)


def _pre_ground(run: _Run) -> None:
    # before the DDP wrap: every rank grounds, then DDP starts them all from rank 0's weights
    from cmisc_model.training.grounding import ground

    tc = run.tc
    ground(run.model, _plain_train_set(run), tc.pre_ground_epochs, tc.ground_batch, tc.ground_lr, run.seed,
           run.d.device, run.progress and run.d.main)


def _wrap(run: _Run) -> None:
    run.net = run.model
    if run.d.world > 1:
        run.net = torch.nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.d.device.index] if run.d.device.type == "cuda" else None)


def _start_outputs(run: _Run, vocab_dir: Path, resuming: bool) -> None:
    """Rank 0: the model folder's vocabulary copies and config.json, and DVCLive."""
    if not run.d.main:
        return
    out_dir, data = run.out_dir, run.data
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.parquet", "word2vec.parquet"):
        # A model folder is self-contained: `cmisc embed` reads the vocabulary from it.
        with S.atomic_path(out_dir / name) as tmp:
            shutil.copyfile(vocab_dir / name, tmp)
    config = {"model": plain_config(data.cfg), "train": dataclasses.asdict(run.tc),
              "data": dataclasses.asdict(run.dc), "text": plain_config(run.text_cfg),
              "vocab_hash": data.vocab_hash, "seed": run.seed, "world_size": run.d.world}
    with S.atomic_path(out_dir / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n")
    if run.live_dir is not None:
        from dvclive import Live

        run.live = Live(dir=str(run.live_dir), resume=resuming, dvcyaml=False, save_dvc_exp=False)


def _checkpoint(run: _Run, path: Path, epoch: int, batch_in_epoch: int) -> None:
    if not run.d.main:
        return
    cfg = run.data.cfg
    save_checkpoint({
        "config": plain_config(cfg),
        "text": plain_config(run.text_cfg),
        "data": {"image_size": cfg.image_size, "resize_factor": run.dc.resize_factor},
        "vocab_hash": run.data.vocab_hash,
        "step": run.step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "rng": rng_state(),
        "history": run.history,
    }, path)
    if path == run.last_path:
        run.last_saved_step = run.step


def _log_metrics(run: _Run, prefix: str, values: dict, plot: bool = True) -> None:
    if run.live is None:
        return
    run.live.step = run.step
    for k, v in values.items():
        run.live.log_metric(f"{prefix}/{k}", v if isinstance(v, int) else float(v), plot=plot)


def _validate(run: _Run, epoch: int) -> dict:
    val = evaluate(_unwrap(run.net), run.data.val_loader, run.d.device, run.baseline_image)
    if run.history["first_val"] is None:
        run.history["first_val"] = dict(val)
    _log_metrics(run, "val", val)
    if run.d.main:
        log.info("step %d epoch %d: val loss %.4f, text perplexity %.2f, image MSE %.4f (R² %.3f against "
                 "the mean image), matching accuracy %.3f", run.step, epoch, val["loss"], val["text_perplexity"],
                 val["image_mse"], val.get("image_r2", float("nan")), val["match_accuracy"])
    return val


def _keep_best(run: _Run, val: dict, epoch: int, batch_in_epoch: int) -> None:
    """model.pt = the checkpoint with the lowest validation loss so far."""
    if run.history["best_val_loss"] is None or val["loss"] < run.history["best_val_loss"]:
        run.history["best_val_loss"] = val["loss"]
        _checkpoint(run, run.best_path, epoch, batch_in_epoch)


def _train_step(run: _Run, batch: dict) -> tuple[dict, torch.Tensor]:
    """One optimiser step on ``batch`` -> (its loss terms, the gradient norm before clipping)."""
    d = run.d
    out = compute_loss(run.net, batch, d.device)
    if d.any(not bool(torch.isfinite(out.loss.detach()))):
        where = (f"the last good checkpoint is {run.last_path} from step {run.last_saved_step}"
                 if run.last_saved_step is not None else f"no checkpoint was written yet ({run.last_path})")
        raise CmiscError(
            f"non-finite loss at step {run.step + 1} (text {out.text_loss.item():.4g}, "
            f"image {out.image_loss.item():.4g}); {where}")
    run.optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.tc.clip_norm)
    run.optimizer.step()
    run.scheduler.step()  # per step (both recipes)
    run.step += 1
    run.samples += len(batch["pair_ids"]) * d.world
    values = {"loss": out.loss.item(), "text_loss": out.text_loss.item(),
              "image_loss": out.image_loss.item(), "match_loss": out.match_loss.item(),
              "match_accuracy": out.match_accuracy.item(),
              "region_words_loss": out.region_words_loss.item()}
    return values, grad_norm


def _record_step(run: _Run, values: dict, grad_norm: torch.Tensor, bar) -> None:
    """Add a step's loss terms to the sums; every ``log_every`` steps, a DVCLive train row."""
    for sums in (run.window, run.epoch_sums):
        for k, v in values.items():
            sums[k] += v
        sums["n"] += 1
    if run.step % run.tc.log_every == 0:
        row = {**_means(run.window), "lr": run.optimizer.param_groups[0]["lr"], "grad_norm": float(grad_norm)}
        _log_metrics(run, "train", row)
        run.window = _zeros()
        if bar is not None:
            bar.set_postfix(loss=f"{row['loss']:.3f}")


def _train_epoch(run: _Run, epoch: int) -> tuple[int, bool]:
    """The steps of one epoch (from the resumed position) -> (batches done, stopped by max_steps)."""
    tc, data = run.tc, run.data
    pos = run.start_batch if epoch == run.start_epoch else 0
    data.train_sampler.set_epoch(epoch, pos)
    data.train_ds.set_epoch(epoch)
    t_epoch = time.perf_counter()
    loader = make_loader(data.train_ds, data.train_sampler, run.dc.num_workers, run.seed, epoch,
                         run.d.device.type == "cuda")
    bar = None
    if run.progress and run.d.main:
        from tqdm import tqdm

        bar = tqdm(total=data.train_sampler.batches_per_epoch(), initial=pos, desc=f"epoch {epoch + 1}/{tc.epochs}",
                   unit="batch", leave=False)
    stopped = False
    for batch in loader:
        pos += 1
        if bar is not None:
            bar.update(1)
        run.history["skipped_images"] += batch["n_skipped"]
        if run.d.any(not batch["pair_ids"]):
            continue  # every image of this batch (on some rank) failed to decode
        values, grad_norm = _train_step(run, batch)
        _record_step(run, values, grad_norm, bar)
        if run.step % tc.checkpoint_every == 0:
            _checkpoint(run, run.last_path, epoch, pos)
        if run.on_step is not None:
            run.on_step(run.step, values)
        if tc.max_steps is not None and run.step >= tc.max_steps:
            stopped = True
            break
    run.train_s += time.perf_counter() - t_epoch
    if run.epoch_sums["n"]:
        _log_metrics(run, "train_epoch", _means(run.epoch_sums))  # means over this epoch's steps
        run.epoch_sums = _zeros()
    if bar is not None:
        bar.close()
    return pos, stopped


def _fit(run: _Run) -> dict:
    """The epochs left, each followed by validation, model.pt and last.pt -> the last validation."""
    last_val = None
    run.net.train()
    for epoch in range(run.start_epoch, run.tc.epochs):
        pos, stopped = _train_epoch(run, epoch)
        if stopped and pos < run.data.train_sampler.batches_per_epoch():
            last_val = _validate(run, epoch)  # stopped mid-epoch by max_steps: resume continues this epoch
            _keep_best(run, last_val, epoch, pos)
            _checkpoint(run, run.last_path, epoch, pos)
            break
        last_val = _validate(run, epoch + 1)
        _keep_best(run, last_val, epoch + 1, 0)
        _checkpoint(run, run.last_path, epoch + 1, 0)
        if stopped:
            break
    if last_val is None:  # nothing left to train (resumed after the last epoch)
        last_val = _validate(run, run.tc.epochs)
        _keep_best(run, last_val, run.tc.epochs, 0)
    if not run.best_path.exists():
        _checkpoint(run, run.best_path, run.tc.epochs, 0)
    return last_val


def _post_phases(run: _Run) -> dict | None:
    """Rank 0, cross-attention only: the grounding phase on the selected model, saved into
    model.pt -> its figures. (The image encoder is fixed there, so the last validation stands.)"""
    tc, model, best_path = run.tc, run.model, run.best_path
    if not (run.d.main and tc.ground_epochs > 0 and model.sentence_match_head is not None):
        return None
    from cmisc_model.training.grounding import ground

    best = load_checkpoint(best_path)
    load_model_state(model, best, best_path)
    grounding = ground(model, _plain_train_set(run), tc.ground_epochs, tc.ground_batch, tc.ground_lr, run.seed,
                       run.d.device, run.progress)
    save_checkpoint({**best, "model": model.state_dict(), "grounding": grounding}, best_path)
    return grounding


def _summary(run: _Run, last_val: dict, grounding: dict | None) -> dict:
    first = run.history["first_val"]
    return {
        "step": run.step,
        "train_samples_per_s": run.samples / run.train_s if run.train_s > 0 else 0.0,
        "train_seconds": run.train_s,
        "skipped_images": run.history["skipped_images"],
        "unusable_rows": run.data.n_unusable,
        "val": last_val,
        "val_first": first,
        "val_text_perplexity_drop": (first["text_perplexity"] - last_val["text_perplexity"]) / first["text_perplexity"],
        "val_image_mse_drop": (first["image_mse"] - last_val["image_mse"]) / first["image_mse"],
        # The figure that says whether the decoder learnt the image: < 1 beats the mean image.
        "val_image_mse_vs_mean": (last_val["image_mse"] / last_val["mean_image_mse"]
                                  if last_val.get("mean_image_mse") else None),
        "grounding": grounding,
    }


def _write_probe(run: _Run, summary: dict, truth: str | Path) -> None:
    data = run.data
    probes = run_probe(run.model, data.rows, data.vocab, data.normaliser, data.cfg, run.dc, run.text_cfg, truth,
                       run.d.device)
    summary["probe"] = probes
    _log_metrics(run, "probe", {f"{k}_{w}": v[w] for k, v in probes["article"].items()
                                for w in ("embedding", "text_only")}, plot=False)
    _log_metrics(run, "probe", {f"region_{k}": v["region"] for k, v in probes.get("regions", {}).items()},
                 plot=False)
    with S.atomic_path(Path(run.live_dir) / "probe.json") as tmp:
        tmp.write_text(json.dumps(probes, indent=2, sort_keys=True) + "\n")


def _end_live(run: _Run, summary: dict, grounding: dict | None) -> None:
    """timings.json, details.json, metrics.json (the key figures) and reconstructions.png."""
    live, live_dir = run.live, Path(run.live_dir)
    # Speed is not a result: it lives beside the metrics, not among them, so
    # `dvc metrics diff` and `dvc exp show` do not report it as a change.
    with S.atomic_path(live_dir / "timings.json") as tmp:
        tmp.write_text(json.dumps({"train_seconds": round(run.train_s, 1), "train_samples_per_s":
                                   round(summary["train_samples_per_s"], 2), "steps": run.step,
                                   "machine": machine()}, indent=2) + "\n")
    if grounding is not None:
        _log_metrics(run, "grounding", grounding, plot=False)
    live.make_summary()
    with S.atomic_path(live_dir / "details.json") as tmp:
        tmp.write_text(json.dumps(live.summary, indent=2, sort_keys=True) + "\n")
    live.summary = key_metrics(live.summary)  # live.end() writes metrics.json from it
    grid = reconstruction_grid(run.model, run.data.val_ds, run.tc.reconstructions, run.d.device)
    if grid is not None:
        target = live_dir / "plots" / "images" / "reconstructions.png"
        with S.atomic_path(target) as tmp:
            grid.save(tmp, format="PNG")
    live.end()


def _report(run: _Run, summary: dict, grounding: dict | None, truth: str | Path | None) -> None:
    """Rank 0: the summary's figures into DVCLive, the probe, and the report files."""
    if not run.d.main:
        return
    data = run.data
    _log_metrics(run, "val", {
        "text_perplexity_drop": summary["val_text_perplexity_drop"],
        "image_mse_vs_mean": summary["val_image_mse_vs_mean"] or 0.0,
        "best_loss": run.history["best_val_loss"],
    }, plot=False)
    _log_metrics(run, "data", {"skipped_images": run.history["skipped_images"], "unusable_rows": data.n_unusable,
                               "train_pairs": len(data.train_ds), "val_pairs": len(data.val_ds)}, plot=False)
    if run.live is not None and truth:
        _write_probe(run, summary, truth)
    if run.live is not None:
        _end_live(run, summary, grounding)


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
    tc = params.train
    d = setup_distributed(device)
    torch.manual_seed(seed + d.rank)
    make_deterministic(seed + d.rank, d.world)  # deterministic ops, fixed threads, seeded RNGs

    data = _load_data(corpus_path, vocab_dir, params, text_cfg, seed, d)
    run = _build_run(data, vocab_dir, params, d, text_cfg=text_cfg, seed=seed, out_dir=out_dir,
                     live_dir=live_dir, progress=progress, on_step=on_step)
    resuming = _maybe_resume(run, resume)
    if not resuming and tc.pre_ground_epochs > 0 and run.model.sentence_match_head is not None:
        _pre_ground(run)
    _wrap(run)
    _start_outputs(run, vocab_dir, resuming)
    if run.history["first_val"] is None:
        _validate(run, 0)
        if run.live is not None:
            run.live.make_summary()

    last_val = _fit(run)
    grounding = _post_phases(run)
    summary = _summary(run, last_val, grounding)
    _report(run, summary, grounding, truth)
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
