"""What makes a training run repeat byte for byte on one machine, in one place.

``make_deterministic(seed, world)`` is called at the start of each training
entry point (``training.autoencoder.train``, ``training.classifier.train_classifier``,
and so ``cmisc scarcity``), once the device is chosen:

- ``torch.use_deterministic_algorithms(True, warn_only=True)``: every op that
  has a deterministic implementation uses it; one that has none (a few CUDA
  backward kernels) warns instead of failing the run;
- cuDNN: no autotuner (``benchmark`` picks kernels by timing them) and
  deterministic kernels; cuBLAS: ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, which it
  needs for repeatable results (set here unless already set, before the first
  model is built);
- a fixed number of torch threads: ``CMISC_THREADS`` when set, else the cores
  this process may use divided by the ranks (what ``setup_distributed`` sets on
  CPU). A CPU op splits its sums among the threads, so another thread count
  can round differently: set ``CMISC_THREADS`` to compare machines with
  different core counts;
- seeds: Python's ``random``, numpy's global generator and torch (every
  device). The checkpoints store these generators' states (for an exact
  resume), so unseeded ones would make ``model.pt`` and ``last.pt`` differ
  between identical runs.

Between machines results still drift: see docs/reproducibility.md.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

THREADS_ENV = "CMISC_THREADS"


def thread_count(world: int = 1) -> int:
    """``$CMISC_THREADS``, else the cores available to this process over ``world`` ranks (at least 1)."""
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be a whole number of threads, got {env!r}") from None
        if n < 1:
            raise ValueError(f"{THREADS_ENV} must be at least 1, got {n}")
        return n
    return max(1, available_cores() // max(1, world))


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_deterministic(seed: int, world: int = 1) -> dict:
    """Deterministic algorithms, fixed threads, every generator seeded with ``seed``.
    Returns what was set (for logs and provenance)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    threads = thread_count(world)
    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # all devices
    return {"seed": seed, "threads": threads, "torch": torch.__version__}
