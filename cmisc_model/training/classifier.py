"""``cmisc train-cl``: train the CMI/SC classifier (paper §5.3, Fig. 4b) and score the test split.

    cmisc train-cl --labelled data/corpus/labelled.parquet --autoencoder models/autoencoder \\
        --out models/classifier [--no-ae] [--repeats K] [--train-fraction F] \\
        [--live-dir reports/classifier] [--params params.yaml]

The classifier is the autoencoder's encoder (weights from
``AUTOENCODER/model.pt``; vocabulary, word vectors, text and image settings
from the same folder) plus the head of ``models/classifier.py`` (params
``classifier.train``: AdamW with a cosine schedule; the 2017 recipe, SGD at
lr 0.1 with everything fine-tuned, is the ``paper2017`` preset). By default
the autoencoder's image CNN, word table and sentence LSTM stay fixed and the
fusion and head train (``freeze_features``, a departure flagged below).

``--no-ae`` is the paper's E_CL^noAE baseline (system ``classifier_no_ae``):
the same network, but the encoder starts from random weights and all of it
trains (``no_ae_epochs``); with ``--vocab`` instead of ``--autoencoder`` it
needs no autoencoder at all, so its stage reruns only when its inputs change.
Its word table still starts from Word2Vec (``word2vec.parquet`` of the
autoencoder folder): the paper says only that the "pre-trained AE" is not
used, and Word2Vec is not part of the AE, so this baseline isolates what the
autoencoder's training adds.

For every evaluation repeat k = 0..K-1 (``annotations.repeat_split``: repeat 0
is the corpus stage's labelled split, k > 0 re-splits with seed + k) a fresh
model is trained on the ``train`` part, the epoch with the best harmonic mean
of CMI and SC accuracy on the ``val`` part is kept (ties: lower val loss), and
that model scores each ``test`` item exactly once.
Departure from 2017: 2017 chose its checkpoint by the harmonic mean on the
*test* set and scored 128 items cycled from 92 (original_impl.md §§7, 11);
here the test split is read only after selection, once per item, no partial
batch dropped.

Outputs in ``--out``: ``predictions.parquet`` (PREDICTIONS rows of every
repeat, with probabilities, and of the ablated test sets of
``cmisc_model/evaluation/ablations.py`` as systems ``<system>:<ablation>``),
``counterfactual.parquet`` (with ``--truth``), ``model.pt`` (repeat 0's selected model, loadable
with ``weights_only=True``; ``cmisc predict`` reads it), ``metrics.json``
(val/test accuracies per repeat), ``config.json``, and copies of
``vocab.parquet`` and ``word2vec.parquet`` so the folder is self-contained.
DVCLive (repeat 0 only) in ``--live-dir``: train loss per step, val accuracies
and loss per epoch; beside it ``test.json`` (the stage's DVC metric), the test
accuracy over the K repeats and the drop with shuffled images, under the same
keys as the evaluate stage's metrics, so that ``dvc exp run ... classifier``
shows them in ``dvc exp show`` without running the later stages.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import shutil
import tempfile
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch.utils.data import DataLoader

from cmisc_model import schemas as S
from cmisc_model.config import BaseConfig, from_mapping, load_section
from cmisc_model.corpus.annotations import LabelledSplitConfig, repeat_split
from cmisc_model.corpus.vocab import read_vocab
from cmisc_model.errors import CmiscError
from cmisc_model.evaluation.ablations import KINDS as ABLATIONS
from cmisc_model.evaluation.ablations import (
    ablated_rows,
    counterfactual_rows,
    read_scenes,
    write_blank_image,
)
from cmisc_model.evaluation.metrics import accuracy
from cmisc_model.models.autoencoder import encoder_state_from_autoencoder
from cmisc_model.models.classifier import Classifier
from cmisc_model.models.config import ClassifierConfig, ModelConfig
from cmisc_model.models.encoders import ArticleEncoder, EncodedParts, load_word2vec
from cmisc_model.text.normalise import TextConfig, TextNormaliser
from cmisc_model.training.autoencoder import AutoencoderParams
from cmisc_model.training.checkpoint import (
    check_format,
    load_checkpoint,
    model_config,
    plain_config,
    save_checkpoint,
)
from cmisc_model.training.data import (
    AutoencoderDataset,
    BucketBatchSampler,
    DataConfig,
    collate,
    eval_loader,
)
from cmisc_model.training.determinism import make_deterministic
from cmisc_model.training.features import (
    PartsMemo,
    ScoringMemo,
    cached_batch,
    cached_probs,
    freeze_feature_parts,
    memo_parts,
)
from cmisc_model.training.optim import build_optimizer, build_scheduler
from cmisc_model.training.runtime import amp_context, machine, setup_distributed
from cmisc_model.training.workers import repeat_pool

if TYPE_CHECKING:
    from dvclive import Live

log = logging.getLogger(__name__)

FORMAT = "cmisc-classifier/1"
SYSTEM_AE, SYSTEM_NO_AE = "classifier", "classifier_no_ae"
TASKS = ("cmi", "sc")


@dataclass
class ClassifierTrainConfig:
    """params ``classifier.train``; the 2017 recipe is the ``paper2017`` preset (``cmisc preset paper2017``)."""

    optimizer: Literal["sgd", "adamw"] = "adamw"  # 2017: sgd
    lr: float = 0.001  # 2017: 0.1
    weight_decay: float = 0.01  # 2017: 0
    schedule: Literal["epoch", "cosine"] = "cosine"  # 2017: epoch (x lr_decay every lr_decay_epochs)
    lr_decay: float = 0.5  # schedule epoch: x 0.5 every lr_decay_epochs epochs
    lr_decay_epochs: int = 2
    warmup_steps: int = 30  # schedule cosine: linear warm-up, then cosine decay to min_lr_ratio x lr
    min_lr_ratio: float = 0.05
    encoder_lr_scale: float = 1.0  # encoder lr = lr x this (1 = joint training at one rate, as 2017)
    momentum: float = 0.0  # sgd only (2017: plain SGD)
    batch_size: int = 16  # 2017
    eval_batch_size: int = 32
    clip_norm: float = 5.0  # 2017
    epochs: int = 40  # the evidence head peaks at epoch 20-40; 2017 kept step 311 of 734 items / 16 = ~6.8 epochs
    max_steps: int | None = None  # stop after this many optimizer steps (None = all epochs)
    select_by: Literal["accuracy", "loss"] = "accuracy"  # val harmonic mean of CMI/SC accuracy, or val loss
    repeats: int | None = None  # evaluation repeats; None = baselines.repeats (the same splits as the baselines)
    train_fraction: float = 1.0  # < 1: train on a random share of the train split (scarce-label study)
    # Departure from 2017 (which fine-tuned everything): keep the autoencoder's
    # image CNN, word table and sentence LSTM fixed and train the fusion
    # (attention, text LSTM) and the head. Those parts are computed once per
    # item, which makes a repeat ~10x faster, so K repeats and the label-scarcity
    # curve fit the CPU budget. Not used by --no-ae, where nothing is pretrained.
    freeze_features: bool = True
    no_ae_epochs: int = 5  # --no-ae trains the whole encoder from scratch: fewer, ~10x dearer epochs
    # --no-ae on a CPU: repeats trained at once, one process each on its share of the cores
    # (training/workers.py); 1 = one after another in this process on all cores. Another value
    # changes each repeat's thread count, and so the last digits of its figures.
    parallel_repeats: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction {self.train_fraction} is not in (0, 1]")
        if self.repeats is not None and self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if min(self.epochs, self.lr_decay_epochs, self.no_ae_epochs, self.parallel_repeats) < 1:
            raise ValueError("epochs, no_ae_epochs, lr_decay_epochs and parallel_repeats must be >= 1")


@dataclass
class ClassifierParams:
    """The ``classifier`` section of params.yaml."""

    model: ClassifierConfig = field(default_factory=ClassifierConfig)
    train: ClassifierTrainConfig = field(default_factory=ClassifierTrainConfig)


# --------------------------------------------------------------------------- data

class LabelledDataset(AutoencoderDataset):
    """``AutoencoderDataset`` over LABELLED rows, plus each row's (CMI, SC) classes.

    Labels are looked up by the batch's ``indices`` (``label_tensors``), so the
    autoencoder's items and ``collate`` are reused unchanged.
    """

    def __init__(self, rows, vocab, normaliser, image_size, train, resize_factor=1.0, hflip=True, seed=0):
        super().__init__(rows, vocab, normaliser, image_size, train, resize_factor, hflip, seed)
        self.rows = list(rows)
        self.cmi = [S.cmi_class(r["cmi"]) if r.get("cmi") is not None else 0 for r in rows]
        self.sc = [S.sc_class(r["sc"]) if r.get("sc") is not None else 0 for r in rows]

    def label_tensors(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor([self.cmi[i] for i in indices], dtype=torch.long),
                torch.tensor([self.sc[i] for i in indices], dtype=torch.long))


@torch.no_grad()
def predict_probs(model: Classifier, ds: AutoencoderDataset, batch_size: int, device: torch.device,
                  progress: bool = False, memo: ScoringMemo | None = None,
                  ) -> tuple[dict[str, tuple[list[float], list[float]]], list[str]]:
    """Eval-mode probabilities per pair: ``({pair_id: (cmi_prob[5], sc_prob[5])}, undecodable pair ids)``.
    ``memo``: this model's encoded images and sentences, reused and extended (``features.ScoringMemo``)."""
    was_training = model.training
    model.eval()
    out: dict[str, tuple[list[float], list[float]]] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(ds), desc="predict", unit="pair")
    for batch in eval_loader(ds, batch_size):
        if batch["pair_ids"]:
            tokens = batch["tokens"].to(device)
            with amp_context(device):
                if memo is None:
                    res = model(batch["images"].to(device), tokens)
                else:
                    res = model.from_parts(memo_parts(model.encoder, batch, memo, device))
            cmi = torch.softmax(res.cmi_logits.float(), dim=1).cpu()  # (B, 5)
            sc = torch.softmax(res.sc_logits.float(), dim=1).cpu()  # (B, 5)
            for p, c, s in zip(batch["pair_ids"], cmi.tolist(), sc.tolist()):
                out[p] = (c, s)
        if bar is not None:
            bar.update(len(batch["pair_ids"]) + batch["n_skipped"])
    if bar is not None:
        bar.close()
    model.train(was_training)
    failed = [p for p in ds.pair_ids if p not in out]
    return out, failed


def evaluate_split(model: Classifier, ds: LabelledDataset, batch_size: int, device: torch.device,
                   cache: list | None = None) -> dict:
    """Accuracy per task, their harmonic mean, and the summed cross-entropy, over ``ds`` (model selection)."""
    probs = cached_probs(model, cache, ds, batch_size) if cache is not None else predict_probs(
        model, ds, batch_size, device)[0]
    n = len(probs)
    correct = {t: 0 for t in TASKS}
    loss = 0.0
    for i, p in enumerate(ds.pair_ids):
        if p not in probs:
            continue
        for t, prob, true in zip(TASKS, probs[p], (ds.cmi[i], ds.sc[i])):
            correct[t] += int(max(range(len(prob)), key=prob.__getitem__) == true)
            loss -= math.log(max(prob[true], 1e-12))
    acc = {t: correct[t] / max(n, 1) for t in TASKS}
    hm = 2 * acc["cmi"] * acc["sc"] / (acc["cmi"] + acc["sc"]) if acc["cmi"] + acc["sc"] > 0 else 0.0
    return {"cmi_accuracy": acc["cmi"], "sc_accuracy": acc["sc"], "harmonic_mean": hm,
            "loss": loss / max(n, 1), "n": n}


def better(new: dict, best: dict | None, select_by: str) -> bool:
    """Is validation result ``new`` better than ``best``? (accuracy: harmonic mean, ties -> lower loss)."""
    if best is None:
        return True
    if select_by == "loss":
        return new["loss"] < best["loss"]
    if new["harmonic_mean"] != best["harmonic_mean"]:
        return new["harmonic_mean"] > best["harmonic_mean"]
    return new["loss"] < best["loss"]


# --------------------------------------------------------------------------- model

@dataclass
class AutoencoderFolder:
    """What the classifier takes from a ``cmisc train-ae`` folder."""

    path: Path
    state: dict  # the AE checkpoint
    cfg: ModelConfig
    vocab: dict[str, int]
    vocab_hash: str
    text_cfg: TextConfig
    resize_factor: float


def read_autoencoder(ae_dir: str | Path) -> AutoencoderFolder:
    """model.pt + vocab.parquet (+ word2vec.parquet) of an AE folder; refuses a vocabulary mismatch."""
    ae_dir = Path(ae_dir)
    for name in ("model.pt", "vocab.parquet", "word2vec.parquet"):
        if not (ae_dir / name).exists():
            raise CmiscError(f"{ae_dir}: not an autoencoder folder ({name} is missing; run `cmisc train-ae`)")
    state = load_checkpoint(ae_dir / "model.pt")
    vocab, vhash = read_vocab(ae_dir)
    if state["vocab_hash"] != vhash:
        raise CmiscError(
            f"{ae_dir / 'model.pt'}: trained with vocabulary {state['vocab_hash']}, but "
            f"{ae_dir / 'vocab.parquet'} is {vhash}: token ids would not match")
    cfg = model_config(state["config"])
    if max(vocab.values()) + 1 != cfg.vocab_size:
        raise CmiscError(f"{ae_dir}: vocab.parquet has {max(vocab.values()) + 1} ids, the model {cfg.vocab_size}")
    text_cfg = from_mapping(TextConfig, state.get("text") or {}, f"{ae_dir}/model.pt text")
    resize = float((state.get("data") or {}).get("resize_factor", DataConfig.resize_factor))
    return AutoencoderFolder(ae_dir, state, cfg, vocab, vhash, text_cfg, resize)


def folder_from_params(vocab_dir: str | Path, params_path: str | Path) -> AutoencoderFolder:
    """What ``--no-ae`` needs without an autoencoder: the vocabulary and Word2Vec of
    ``vocab_dir`` and the model, text and data settings of params.yaml. So the no-AE
    baseline does not retrain when only the autoencoder changes."""
    vocab_dir = Path(vocab_dir)
    for name in ("vocab.parquet", "word2vec.parquet"):
        if not (vocab_dir / name).exists():
            raise CmiscError(f"{vocab_dir}: not a vocabulary folder ({name} is missing; run the vocab stage)")
    vocab, vhash = read_vocab(vocab_dir)
    ae_params = load_section(AutoencoderParams, "autoencoder", params_path)
    cfg = ae_params.model.replace(vocab_size=max(vocab.values()) + 1)
    text_cfg = load_section(TextConfig, "text", params_path)
    return AutoencoderFolder(vocab_dir, {}, cfg, vocab, vhash, text_cfg, ae_params.data.resize_factor)


def build_classifier(ae: AutoencoderFolder, head: ClassifierConfig, init: Literal["autoencoder", "random"]) -> Classifier:
    """A classifier whose encoder starts from the AE (``autoencoder``) or from scratch + Word2Vec (``random``)."""
    encoder = ArticleEncoder(ae.cfg)
    if init == "autoencoder":
        encoder.load_state_dict(encoder_state_from_autoencoder(ae.state["model"]))
    else:
        encoder.load_word_vectors(load_word2vec(ae.path / "word2vec.parquet", ae.vocab, ae.cfg.init_range))
    return Classifier(encoder, head)


def load_classifier_checkpoint(path: str | Path) -> dict:
    """A ``cmisc train-cl`` model.pt, loaded with ``weights_only=True``; a bad file is a CmiscError naming it."""
    path = Path(path)
    if not path.exists():
        raise CmiscError(f"{path}: no such classifier checkpoint (run `cmisc train-cl`)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file is bad input
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CmiscError(f"{path}: not a readable checkpoint (corrupt or truncated?): {first}") from e
    check_format(state, path, FORMAT, "classifier", "dvc repro classifier (or cmisc train-cl)")
    missing = [k for k in ("config", "classifier", "text", "vocab_hash", "model") if k not in state]
    if missing:
        raise CmiscError(f"{path}: checkpoint lacks {missing}")
    return state


# --------------------------------------------------------------------------- training

@dataclass
class _Repeat:
    """One repeat's training: what its setup built and what its steps change."""

    tc: ClassifierTrainConfig
    data_cfg: DataConfig
    init: str
    seed: int
    device: torch.device
    model: Classifier
    train_ds: LabelledDataset
    val_ds: LabelledDataset
    epochs: int
    frozen: bool  # freeze_features: the encoder's fixed parts come from the caches
    cache: list | None = None  # frozen: each training item's encoder parts
    val_cache: list | None = None
    kept: list[int] = field(default_factory=list)  # frozen: the training items with cached parts
    skipped: int = 0  # images that failed to decode
    optimizer: torch.optim.Optimizer | None = None
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    sampler: BucketBatchSampler | None = None
    live: Live | None = None
    step: int = 0


def _repeat_rows(split_rows: list[dict], tc: ClassifierTrainConfig, seed: int) -> tuple[list[dict], list[dict]]:
    """The repeat's train rows (a random ``train_fraction`` share) and val rows."""
    rng = random.Random(seed)
    train_rows = [r for r in split_rows if r["split"] == "train"]
    val_rows = [r for r in split_rows if r["split"] == "val"]
    if tc.train_fraction < 1.0:
        train_rows = rng.sample(train_rows, max(1, round(tc.train_fraction * len(train_rows))))
    if not train_rows or not val_rows:
        raise CmiscError(f"labelled split has {len(train_rows)} train and {len(val_rows)} val items; need both")
    return train_rows, val_rows


def _cache_features(r: _Repeat, ae: AutoencoderFolder, train_rows: list[dict], normaliser: TextNormaliser,
                    parts_transform, memo: PartsMemo) -> None:
    """``freeze_features``: fix the feature parts and take each item's encoder parts from ``memo``."""
    freeze_feature_parts(r.model)
    # centre crops, no flip: a cached item is seen the same way every epoch
    plain = LabelledDataset(train_rows, ae.vocab, normaliser, ae.cfg.image_size, False, ae.resize_factor)
    r.cache = memo.cache(r.model.encoder, plain, r.tc.eval_batch_size, r.device)
    r.val_cache = memo.cache(r.model.encoder, r.val_ds, r.tc.eval_batch_size, r.device)
    if parts_transform is not None:
        r.cache, r.val_cache = parts_transform(r.cache, plain), parts_transform(r.val_cache, r.val_ds)
    r.kept = [i for i, c in enumerate(r.cache) if c is not None]
    r.skipped = len(r.cache) - len(r.kept)


def _build_optimiser(r: _Repeat) -> None:
    """Two parameter groups (the encoder at ``encoder_lr_scale`` x lr, the rest at lr) and the
    per-step schedule over the repeat's steps."""
    tc = r.tc
    enc = [p for p in r.model.encoder.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in enc}
    head = [p for p in r.model.parameters() if p.requires_grad and id(p) not in enc_ids]
    r.optimizer = build_optimizer([{"params": enc, "lr": tc.lr * tc.encoder_lr_scale},
                                   {"params": head, "lr": tc.lr}], tc)
    r.sampler = BucketBatchSampler(r.train_ds.lengths(), tc.batch_size, True, r.seed,
                                   chunk_batches=r.data_cfg.bucket_chunk)
    per_epoch = r.sampler.batches_per_epoch()
    total = min(r.epochs * per_epoch, tc.max_steps or r.epochs * per_epoch)
    r.scheduler = build_scheduler(r.optimizer, tc, total, per_epoch, tc.lr_decay_epochs)


def _batches(r: _Repeat, epoch: int):
    """-> (indices, EncodedParts or None, batch dict or None) per step."""
    if r.frozen:
        g = torch.Generator().manual_seed(r.seed * 7919 + epoch)
        order = [r.kept[i] for i in torch.randperm(len(r.kept), generator=g).tolist()]
        for k in range(0, len(order), r.tc.batch_size):
            idx = order[k : k + r.tc.batch_size]
            yield idx, cached_batch(r.cache, idx, r.model.encoder.drop), None
        return
    r.sampler.set_epoch(epoch)
    r.train_ds.set_epoch(epoch)
    g = torch.Generator().manual_seed(r.seed * 7919 + epoch)
    for batch in DataLoader(r.train_ds, batch_sampler=r.sampler, collate_fn=collate,
                            num_workers=r.data_cfg.num_workers, generator=g):
        yield batch["indices"], None, batch


def _step(r: _Repeat, indices: list[int], parts: EncodedParts | None, batch: dict | None) -> float:
    """One optimiser step -> its loss."""
    device, model = r.device, r.model
    cmi, sc = (t.to(device) for t in r.train_ds.label_tensors(indices))
    with amp_context(device):
        if parts is not None:
            out = model.from_parts(parts, cmi, sc)
        else:
            out = model(batch["images"].to(device), batch["tokens"].to(device), cmi, sc)
    if not torch.isfinite(out.loss.detach()):
        raise CmiscError(f"non-finite classifier loss at step {r.step + 1} (lower classifier.train.lr?)")
    r.optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], r.tc.clip_norm)
    r.optimizer.step()
    r.scheduler.step()  # per step (both recipes)
    r.step += 1
    return out.loss.item()


def _train_epoch(r: _Repeat, epoch: int, progress: bool) -> list[float]:
    """The steps of one epoch (up to ``max_steps``) -> their losses."""
    steps = _batches(r, epoch)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, total=r.sampler.batches_per_epoch(), desc=f"{r.init} epoch {epoch + 1}/{r.epochs}",
                     unit="batch", leave=False)
    losses = []
    for indices, parts, batch in steps:
        if batch is not None:
            r.skipped += batch["n_skipped"]
        if not indices:
            continue
        losses.append(_step(r, indices, parts, batch))
        if r.live is not None:
            r.live.step = r.step
            r.live.log_metric("train/loss", losses[-1])
            r.live.log_metric("train/lr", r.optimizer.param_groups[1]["lr"])
        if r.tc.max_steps is not None and r.step >= r.tc.max_steps:
            break
    return losses


def _validate_epoch(r: _Repeat, epoch: int, losses: list[float]) -> dict:
    val = evaluate_split(r.model, r.val_ds, r.tc.eval_batch_size, r.device, r.val_cache)
    val.update(epoch=epoch + 1, step=r.step, train_loss=sum(losses) / max(len(losses), 1))
    log.info("%s epoch %d step %d: train loss %.3f, val CMI %.3f SC %.3f (hm %.3f), val loss %.3f",
             r.init, epoch + 1, r.step, val["train_loss"], val["cmi_accuracy"], val["sc_accuracy"],
             val["harmonic_mean"], val["loss"])
    if r.live is not None:
        r.live.step = r.step
        for k in ("cmi_accuracy", "sc_accuracy", "harmonic_mean", "loss"):
            r.live.log_metric(f"val/{k}", val[k])
    return val


def train_repeat(ae: AutoencoderFolder, split_rows: list[dict], params: ClassifierParams, data_cfg: DataConfig,
                 init: str, seed: int, device: torch.device, live=None, progress: bool = False,
                 parts_transform=None, memo: PartsMemo | None = None) -> dict:
    """Train on ``train``, select on ``val``; returns the selected model's state and the history.
    ``parts_transform(cache, dataset) -> cache`` edits the cached parts before training
    (``freeze_features`` only; the oracle study, ``cmisc_model/diagnostics/oracle.py``).
    ``memo``: the frozen encoder's parts of earlier repeats on the same autoencoder.

    The test rows are not touched here.
    """
    tc = params.train
    train_rows, val_rows = _repeat_rows(split_rows, tc, seed)
    normaliser = TextNormaliser(ae.text_cfg)
    size = ae.cfg.image_size
    train_ds = LabelledDataset(train_rows, ae.vocab, normaliser, size, True, ae.resize_factor, data_cfg.hflip, seed)
    val_ds = LabelledDataset(val_rows, ae.vocab, normaliser, size, False, ae.resize_factor)

    torch.manual_seed(seed)  # head init, random encoder init (--no-ae), dropout
    model = build_classifier(ae, params.model, init).to(device)
    frozen = tc.freeze_features and init == "autoencoder"
    epochs = tc.epochs if init == "autoencoder" else tc.no_ae_epochs
    r = _Repeat(tc, data_cfg, init, seed, device, model, train_ds, val_ds, epochs, frozen, live=live)
    if parts_transform is not None and not frozen:
        raise CmiscError("parts_transform edits cached parts: it needs freeze_features and the autoencoder")
    if frozen:
        _cache_features(r, ae, train_rows, normaliser, parts_transform, memo or PartsMemo())
    _build_optimiser(r)

    best, best_state, history = None, None, []
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        losses = _train_epoch(r, epoch, progress)
        val = _validate_epoch(r, epoch, losses)
        history.append(val)
        if better(val, best, tc.select_by):
            best = val
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if tc.max_steps is not None and r.step >= tc.max_steps:
            break
    model.load_state_dict(best_state)
    return {"model": model, "best": best, "history": history, "skipped_images": r.skipped,
            "n_train": len(train_ds), "n_val": len(val_ds), "seconds": time.perf_counter() - t0}


def prediction_rows(system: str, repeat: int, test_rows: list[dict], probs: dict, split: str = "test") -> list[dict]:
    rows = []
    for r in test_rows:
        cmi_p, sc_p = probs[r["pair_id"]]
        rows.append({
            "system": system, "repeat": repeat, "pair_id": r["pair_id"], "source": r.get("source"),
            "split": split, "cmi_true": S.cmi_class(r["cmi"]), "sc_true": S.sc_class(r["sc"]),
            "cmi_pred": max(range(len(cmi_p)), key=cmi_p.__getitem__),
            "sc_pred": max(range(len(sc_p)), key=sc_p.__getitem__),
            "cmi_prob": cmi_p, "sc_prob": sc_p,
        })
    return rows


def test_summary(metrics: dict, predictions: list[dict], system: str) -> dict:
    """Per task: test accuracy, mean over the K repeats, and how many points it drops with the
    test images shuffled among test items (the evaluate stage's ``mean``, ``shuffled_drop``);
    the held-out world's mean accuracies under ``heldout`` when it was scored."""
    out = _split_summary(metrics["test_mean"], predictions, system, "test")
    if "heldout_mean" in metrics:  # the means only: `dvc metrics show` stays one screen
        out["heldout"] = {t: round(metrics["heldout_mean"][f"{t}_accuracy"], 4) for t in TASKS}
    return out


def _split_summary(means: dict, predictions: list[dict], system: str, split: str) -> dict:
    shuffled = [r for r in predictions if r["system"] == f"{system}:images_shuffled" and r["split"] == split]
    out = {}
    for t in TASKS:
        mean = means[f"{t}_accuracy"]
        out[t] = {"mean": round(mean, 4)}
        if shuffled:  # equal-sized repeats: the pooled accuracy is the mean over repeats
            acc = sum(r[f"{t}_pred"] == r[f"{t}_true"] for r in shuffled) / len(shuffled)
            out[t]["shuffled_drop"] = round(100 * (mean - acc), 4)
    return out


@dataclass
class _Heldout:
    """The held-out world: its labelled rows (all scored by every repeat) and scenes."""

    path: Path
    rows: list[dict]
    scenes: dict


@dataclass
class _Stage:
    """What the repeats of the classifier stage share, and what they add up."""

    ae: AutoencoderFolder
    params: ClassifierParams
    data_cfg: DataConfig
    system: str
    init: str
    seed: int
    device: torch.device
    labelled_path: Path
    out_dir: Path
    scenes: dict  # with ``truth``: the sample world's scenes, for the counterfactual texts
    blank: Path  # the blank image of the images_blank ablation
    ablation_kinds: tuple[str, ...]
    progress: bool
    heldout: _Heldout | None = None
    memo: PartsMemo | None = None  # freeze_features: the encoder parts every repeat shares
    predictions: list[dict] = field(default_factory=list)
    counterfactuals: list[dict] = field(default_factory=list)
    per_repeat: list[dict] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def _read_heldout(path: str | Path | None, truth: str | Path | None) -> _Heldout | None:
    from cmisc_model.evaluation.heldout import read_heldout

    if path is None:
        return None
    rows = _usable(read_heldout(path), Path(path))  # names the file when a row is not of split heldout
    return _Heldout(Path(path), rows, read_scenes(truth) if truth else {})


def _labelled_rows(labelled_path: Path) -> list[dict]:
    return _usable(S.read_table(labelled_path, S.LABELLED).to_pylist(), labelled_path)


def _usable(rows: list[dict], labelled_path: Path) -> list[dict]:
    unusable = [r["pair_id"] for r in rows if r["image_status"] != "ok" or not r["image_path"]]
    if unusable:
        # Every test item must be scored once, and the classifier needs an image.
        raise CmiscError(f"{labelled_path}: {len(unusable)} labelled pair(s) have no usable image, "
                         f"e.g. {', '.join(unusable[:5])}")
    return rows


def _predict_rows(st: _Stage, model: Classifier, rows: list[dict], memo: ScoringMemo) -> tuple[dict, list[str]]:
    """``predict_probs`` over ``rows`` read as the autoencoder reads them (centre crops); with a
    frozen encoder from the stage's memo of encoder parts (the same figures, each input encoded
    once), else with ``memo``, the images and sentences the selected model has encoded so far."""
    ae, bs = st.ae, st.params.train.eval_batch_size
    ds = LabelledDataset(rows, ae.vocab, TextNormaliser(ae.text_cfg), ae.cfg.image_size, False, ae.resize_factor)
    if st.memo is None:
        return predict_probs(model, ds, bs, st.device, memo=memo)
    probs = cached_probs(model, st.memo.cache(model.encoder, ds, bs, st.device), ds, bs)
    return probs, [p for p in ds.pair_ids if p not in probs]


def _score_test(st: _Stage, k: int, model: Classifier, test_rows: list[dict]) -> list[dict]:
    """The test split, read only now: each item scored once by the selected model; then its
    ablations and counterfactuals (seed + k, as ``cmisc ablate --repeat k``) -> repeat k's
    prediction rows of the intact test split."""
    return _score_split(st, k, model, test_rows, "test", st.ablation_kinds, st.scenes, st.labelled_path,
                        st.seed + k)


def _score_split(st: _Stage, k: int, model: Classifier, rows: list[dict], split: str, kinds: tuple[str, ...],
                 scenes: dict, where: Path, seed: int) -> list[dict]:
    """Score ``rows`` (split ``split``), the ablations ``kinds`` of them and, with ``scenes``,
    their counterfactual texts (shuffles and edits drawn with ``seed``); returns the intact
    rows' predictions."""
    memo = ScoringMemo()  # the intact rows' images and sentences serve the shuffled and counterfactual sets
    probs, failed = _predict_rows(st, model, rows, memo)
    if failed:
        raise CmiscError(f"{where}: repeat {k}: {split} image(s) of {', '.join(failed[:5])} "
                         "cannot be decoded, so they cannot be scored")
    rows_k = prediction_rows(st.system, k, rows, probs, split)
    st.predictions += rows_k
    # What the selected model uses: the same items with image or text taken away.
    for kind in kinds:
        ab = ablated_rows(rows, kind, seed, st.blank)
        ab_probs, _ = _predict_rows(st, model, ab, memo)
        st.predictions += prediction_rows(f"{st.system}:{kind}", k, ab, ab_probs, split)
    if scenes:
        cf = counterfactual_rows(rows, scenes, seed)
        cf_probs, _ = _predict_rows(st, model, cf, memo)
        st.counterfactuals += prediction_rows(f"{st.system}:counterfactual", k, cf, cf_probs, split)
    return rows_k


def _score_heldout(st: _Stage, k: int, model: Classifier) -> dict | None:
    """The held-out world scored by repeat k's model: intact, images shuffled (the ablation that
    shows whether the image is read; the others stay on the test split, to keep the stage short)
    and, with its scenes, counterfactual texts. The shuffle and the edits are the same for every
    repeat (seed ``base.seed``): the K models score one fixed set, and a frozen encoder encodes
    it once. Returns the intact accuracies."""
    if st.heldout is None:
        return None
    h = st.heldout
    kinds = ("images_shuffled",) if "images_shuffled" in st.ablation_kinds else ()
    rows_k = _score_split(st, k, model, h.rows, "heldout", kinds, h.scenes, h.path, st.seed)
    return {f"{t}_accuracy": accuracy([r[f"{t}_true"] for r in rows_k], [r[f"{t}_pred"] for r in rows_k])
            for t in TASKS}


def _save_model(st: _Stage, model: Classifier, best: dict) -> None:
    """model.pt: repeat 0's selected model."""
    ae = st.ae
    save_checkpoint({
        "format": FORMAT, "system": st.system, "init": st.init, "repeat": 0,
        "config": plain_config(ae.cfg), "classifier": dataclasses.asdict(st.params.model),
        "text": plain_config(ae.text_cfg),
        "data": {"image_size": ae.cfg.image_size, "resize_factor": ae.resize_factor},
        "vocab_hash": ae.vocab_hash, "step": best["step"], "epoch": best["epoch"],
        "model": model.state_dict(),
        "metrics": {"val": st.per_repeat[0]["val"]},
    }, st.out_dir / "model.pt")


def _run_repeat(st: _Stage, k: int, split_rows: list[dict], live_dir: str | Path | None) -> None:
    """Repeat k: train and select (DVCLive for repeat 0), score the test split, record the figures."""
    test_rows = [r for r in split_rows if r["split"] == "test"]
    if not test_rows:
        raise CmiscError(f"{st.labelled_path}: repeat {k} has no test items")
    live = None
    if k == 0 and live_dir is not None:
        from dvclive import Live

        live = Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False)
    res = train_repeat(st.ae, split_rows, st.params, st.data_cfg, st.init, st.seed + k, st.device, live,
                       st.progress, memo=st.memo)
    model = res["model"]
    rows_k = _score_test(st, k, model, test_rows)
    test_acc = {f"{t}_accuracy": sum(r[f"{t}_pred"] == r[f"{t}_true"] for r in rows_k) / len(rows_k)
                for t in TASKS}
    heldout_acc = _score_heldout(st, k, model)
    best = res["best"]
    st.per_repeat.append({
        "repeat": k, "selected_epoch": best["epoch"], "selected_step": best["step"],
        "val": {key: best[key] for key in ("cmi_accuracy", "sc_accuracy", "harmonic_mean", "loss")},
        "test": test_acc, "n_train": res["n_train"], "n_val": res["n_val"], "n_test": len(rows_k),
        "skipped_images": res["skipped_images"], "threads": torch.get_num_threads(),
        **({"heldout": heldout_acc} if heldout_acc is not None else {}),
        "history": res["history"],
    })
    log.info("%s repeat %d: selected epoch %d (val CMI %.3f SC %.3f); test CMI %.3f SC %.3f",
             st.system, k, best["epoch"], best["cmi_accuracy"], best["sc_accuracy"],
             test_acc["cmi_accuracy"], test_acc["sc_accuracy"])
    st.seconds.append(round(res["seconds"], 1))
    if k == 0:
        _save_model(st, model, best)
        if live is not None:
            for key in ("cmi_accuracy", "sc_accuracy", "harmonic_mean"):
                live.summary[f"selected/val_{key}"] = best[key]
            live.summary["selected/epoch"] = best["epoch"]
            live.end()


def _pooled_repeat(st: _Stage, k: int, split_rows: list[dict], live_dir: str | Path | None) -> tuple:
    """Repeat k in a worker process (``st`` is its own copy) -> what it adds to the stage."""
    make_deterministic(st.seed)  # this process's threads (CMISC_THREADS); the repeat seeds itself
    _run_repeat(st, k, split_rows, live_dir)
    return st.predictions, st.counterfactuals, st.per_repeat, st.seconds


def _run_repeats(st: _Stage, splits: list[list[dict]], live_dir: str | Path | None,
                 pool: Executor | None) -> None:
    """Every repeat, one after another or as jobs of ``pool``; merged in repeat order either way."""
    if pool is None:
        for k, split_rows in enumerate(splits):
            _run_repeat(st, k, split_rows, live_dir)
        return
    job = dataclasses.replace(st, progress=False, predictions=[], counterfactuals=[], per_repeat=[], seconds=[])
    futures = [pool.submit(_pooled_repeat, job, k, split_rows, live_dir) for k, split_rows in enumerate(splits)]
    for k, future in enumerate(futures):
        predictions, counterfactuals, per_repeat, seconds = future.result()
        st.predictions += predictions
        st.counterfactuals += counterfactuals
        st.per_repeat += per_repeat
        st.seconds += seconds
        log.info("%s: repeat %d of %d done", st.system, k + 1, len(futures))


def _write_predictions(st: _Stage) -> None:
    from cmisc_model.evaluation.report import predictions_table, write_predictions

    write_predictions(predictions_table(st.predictions, str(st.out_dir)), st.out_dir / "predictions.parquet")
    if st.scenes:
        # labels of counterfactual texts differ from labelled.parquet: a file of their own
        write_predictions(predictions_table(st.counterfactuals, str(st.out_dir)),
                          st.out_dir / "counterfactual.parquet")


def _metrics(st: _Stage, repeats: int) -> dict:
    def mean(part: str, key: str) -> float:
        return sum(r[part][key] for r in st.per_repeat) / len(st.per_repeat)

    out = {
        "system": st.system, "init": st.init, "repeats": repeats, "train_fraction": st.params.train.train_fraction,
        "val_mean": {key: mean("val", key) for key in ("cmi_accuracy", "sc_accuracy")},
        "test_mean": {key: mean("test", key) for key in ("cmi_accuracy", "sc_accuracy")},
    }
    if st.heldout is not None:
        out["heldout_mean"] = {key: mean("heldout", key) for key in ("cmi_accuracy", "sc_accuracy")}
    return {**out, "per_repeat": st.per_repeat}


def _write_reports(st: _Stage, metrics: dict, live_dir: str | Path | None, repeats: int) -> None:
    """metrics.json; beside DVCLive test.json and timings.json; the model folder's config.json
    and vocabulary copies."""
    out_dir, ae, params = st.out_dir, st.ae, st.params
    with S.atomic_path(out_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    if live_dir is not None:
        with S.atomic_path(Path(live_dir) / "test.json") as tmp:
            tmp.write_text(json.dumps(test_summary(metrics, st.predictions, st.system), indent=2) + "\n")
        # speed is not a result: beside the metrics, tracked by neither git nor DVC
        with S.atomic_path(Path(live_dir) / "timings.json") as tmp:
            tmp.write_text(json.dumps({"train_seconds": st.seconds, "machine": machine()}, indent=2) + "\n")
    config = {"system": st.system, "autoencoder": str(ae.path), "classifier": dataclasses.asdict(params.model),
              "train": dataclasses.asdict(params.train), "model": plain_config(ae.cfg),
              "text": plain_config(ae.text_cfg), "vocab_hash": ae.vocab_hash, "seed": st.seed, "repeats": repeats}
    with S.atomic_path(out_dir / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n")
    for name in ("vocab.parquet", "word2vec.parquet"):
        # A model folder is self-contained: `cmisc predict` reads the vocabulary from it.
        with S.atomic_path(out_dir / name) as tmp:
            shutil.copyfile(ae.path / name, tmp)


def train_classifier(labelled_path: str | Path, ae_dir: str | Path, out_dir: str | Path, params: ClassifierParams,
                     repeats: int, seed: int, split_cfg: LabelledSplitConfig | None = None, no_ae: bool = False,
                     data_cfg: DataConfig | None = None, live_dir: str | Path | None = None,
                     device: str | None = None, progress: bool = False, truth: str | Path | None = None,
                     ablation_kinds: tuple[str, ...] = ABLATIONS, heldout: str | Path | None = None,
                     heldout_truth: str | Path | None = None, memo: PartsMemo | None = None,
                     pool: Executor | None = None) -> dict:
    """The classifier stage: K repeats -> predictions.parquet (with the ablations), model.pt
    (repeat 0), metrics.json; with ``truth`` (the sample world's scenes.jsonl) also
    counterfactual.parquet. ``heldout``: a held-out labelled file that every repeat's
    selected model also scores (rows of split ``heldout``; ``heldout_truth`` its scenes).
    ``memo``: encoder parts already computed on this autoencoder (``freeze_features``; the
    scarcity study shares one across its runs). ``pool``: worker processes for the repeats of a
    trainable encoder (default: ``repeat_pool`` of ``parallel_repeats``); a frozen encoder's
    repeats stay in this process, where they share ``memo``."""
    labelled_path, out_dir = Path(labelled_path), Path(out_dir)
    split_cfg = split_cfg or LabelledSplitConfig()
    system, init = (SYSTEM_NO_AE, "random") if no_ae else (SYSTEM_AE, "autoencoder")
    dev = setup_distributed(device).device
    make_deterministic(seed)  # deterministic ops, fixed threads, seeded RNGs
    ae = ae_dir if isinstance(ae_dir, AutoencoderFolder) else read_autoencoder(ae_dir)
    rows = _labelled_rows(labelled_path)

    out_dir.mkdir(parents=True, exist_ok=True)
    scenes = read_scenes(truth) if truth is not None else {}
    blank_dir = tempfile.TemporaryDirectory()
    blank = write_blank_image(Path(blank_dir.name) / "blank.png", ae.cfg.image_size)
    memo = (memo or PartsMemo()) if params.train.freeze_features and not no_ae else None
    st = _Stage(ae, params, data_cfg or DataConfig(), system, init, seed, dev, labelled_path, out_dir, scenes,
                blank, ablation_kinds, progress, _read_heldout(heldout, heldout_truth), memo)
    splits = [repeat_split(rows, seed, k, split_cfg) for k in range(repeats)]
    own = repeat_pool(params.train.parallel_repeats, repeats, dev) if memo is None and pool is None else None
    try:
        _run_repeats(st, splits, live_dir, None if memo is not None else pool or own)
    finally:
        if own is not None:
            own.shutdown(cancel_futures=True)
    _write_predictions(st)
    blank_dir.cleanup()
    metrics = _metrics(st, repeats)
    _write_reports(st, metrics, live_dir, repeats)
    return metrics


# --------------------------------------------------------------------------- cli

def cli_main(argv: list[str]) -> int:
    """The options are in ``cmisc_model/commands.py`` (parsed there without torch for ``cmisc``)."""
    from cmisc_model.commands import parse_train_cl

    return run(parse_train_cl(argv))


def run(args: argparse.Namespace) -> int:
    from cmisc_model.corpus.assemble import CorpusConfig
    from cmisc_model.evaluation.baselines import BaselinesConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    params = load_section(ClassifierParams, "classifier", args.params)
    if args.train_fraction is not None:
        params.train = dataclasses.replace(params.train, train_fraction=args.train_fraction)
    repeats = args.repeats or params.train.repeats or load_section(BaselinesConfig, "baselines", args.params).repeats
    seed = load_section(BaseConfig, "base", args.params).seed
    split_cfg = load_section(CorpusConfig, "corpus", args.params).labelled
    data_cfg = load_section(AutoencoderParams, "autoencoder", args.params).data
    ae = args.autoencoder if args.autoencoder is not None else folder_from_params(args.vocab, args.params)
    metrics = train_classifier(args.labelled, ae, args.out, params, repeats, seed, split_cfg,
                               args.no_ae, data_cfg, args.live_dir, args.device, progress=True, truth=args.truth or None,
                               ablation_kinds=() if args.no_ablations else ABLATIONS,
                               heldout=args.heldout, heldout_truth=args.heldout_truth or None)
    print(json.dumps({k: metrics[k] for k in ("system", "repeats", "val_mean", "test_mean", "heldout_mean")
                      if k in metrics}, indent=2))
    return 0
