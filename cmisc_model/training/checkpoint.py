"""Autoencoder checkpoints: self-describing, safe to load, written atomically.

A checkpoint is a plain dict that ``torch.load(..., weights_only=True)``
accepts (dicts, lists, tuples, tensors, numbers, strings; RNG states as
tensors):

    {"format": "cmisc-autoencoder/1", "config": asdict(ModelConfig),
     "text": asdict(TextConfig), "data": {"image_size", "resize_factor"},
     "vocab_hash": str, "step": int, "epoch": int, "batch_in_epoch": int,
     "model": state_dict, "optimizer": state_dict, "scheduler": state_dict,
     "rng": {"torch", "cuda", "numpy", "python"}, "metrics": {...}}

``check_compatible`` refuses a checkpoint made for another vocabulary or
another architecture and says what differs. Loading never unpickles code.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cmisc_model.errors import CmiscError
from cmisc_model.models.config import ModelConfig
from cmisc_model.schemas import atomic_path

log = logging.getLogger(__name__)

FORMAT = "cmisc-autoencoder/1"

# Fields of ModelConfig that do not change the shape of any weight: a
# difference is logged, not refused (e.g. resuming with another dropout).
NON_SHAPE_FIELDS = {
    "dropout", "decoder_dropout", "image_loss_weight", "inception_weights", "freeze_bn",
    "encoder_trainable", "init_range", "logit_scale_init",
}


def plain_config(cfg: ModelConfig | Mapping) -> dict:
    """A config as JSON-like values (tuples -> lists), for storing and comparing."""
    d = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    return json.loads(json.dumps(d))


def model_config(stored: Mapping) -> ModelConfig:
    """Rebuild the ModelConfig a checkpoint was trained with.

    ``inception_weights`` is dropped: the checkpoint's state dict already holds
    every weight, so the original ImageNet file is not needed again.
    """
    fields = {f.name: f for f in dataclasses.fields(ModelConfig)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in stored.items() if k in fields}
    kwargs["inception_weights"] = None
    return ModelConfig(**kwargs)


# --------------------------------------------------------------------------- rng

def rng_state() -> dict:
    """torch, CUDA, numpy and python RNG states as tensors and ints."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": py_gauss},
    }


def set_rng_state(state: Mapping) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["state"].tolist()), p["gauss"]))


# --------------------------------------------------------------------------- io

def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """Write atomically: a crash mid-write leaves the previous file intact.

    ``torch.save`` gets a file object, not the path: given a path, torch names
    the folder inside its zip archive after the file, here the temporary file's
    random name, so two identical checkpoints would differ byte for byte (and
    every ``dvc repro`` would change the model folders' hashes)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save({"format": FORMAT, **state}, f)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load with ``weights_only=True``; a missing, truncated or foreign file is a CmiscError naming it."""
    path = Path(path)
    if not path.exists():
        raise CmiscError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # any unreadable file is bad input
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CmiscError(f"{path}: not a readable checkpoint (corrupt or truncated?): {first}") from e
    check_format(state, path, FORMAT, "autoencoder", "dvc repro autoencoder (or cmisc train-ae)")
    missing = [k for k in ("config", "vocab_hash", "model", "step") if k not in state]
    if missing:
        raise CmiscError(f"{path}: checkpoint lacks {missing}")
    return state


def check_format(state: Any, path: str | Path, expected: str, what: str, rebuild: str) -> None:
    """Refuse a file of another format. One of an older version of the same family (a model
    from before the model or its data changed) gets the command that rebuilds it."""
    fmt = state.get("format") if isinstance(state, dict) else type(state).__name__
    if fmt == expected:
        return
    family = expected.rsplit("/", 1)[0] + "/"
    if isinstance(fmt, str) and fmt.startswith(family):
        raise CmiscError(f"{path}: a {what} model of format {fmt!r}, written by another version of cmisc; "
                         f"this one reads {expected!r}. Rebuild it: {rebuild}")
    raise CmiscError(f"{path}: not a cmisc {what} checkpoint (format {fmt!r}, expected {expected!r})")


def check_compatible(state: Mapping, config: ModelConfig | Mapping, vocab_hash: str | None,
                     path: str | Path) -> None:
    """Refuse a checkpoint for another vocabulary or architecture, listing the differences."""
    problems = []
    if vocab_hash is not None and state.get("vocab_hash") != vocab_hash:
        problems.append(f"vocabulary hash {state.get('vocab_hash')} (checkpoint) != {vocab_hash} (given)")
    stored, wanted = plain_config(state["config"]), plain_config(config)
    for key in sorted(set(stored) | set(wanted)):
        a, b = stored.get(key), wanted.get(key)
        if a == b:
            continue
        if key in NON_SHAPE_FIELDS:
            log.warning("%s: %s was %r, now %r (not a shape; continuing)", path, key, a, b)
        else:
            problems.append(f"{key} {a!r} (checkpoint) != {b!r} (params)")
    if problems:
        raise CmiscError(f"{path}: checkpoint does not match: " + "; ".join(problems))


def load_model_state(model: torch.nn.Module, state: Mapping, path: str | Path) -> None:
    """``load_state_dict`` with a CmiscError naming the file and the first differing keys."""
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise CmiscError(f"{path}: weights do not fit the model ({' '.join(lines[1:3])[:300]})") from e
