"""Independent training repeats side by side, one process each, on a CPU.

A classifier repeat from scratch (``--no-ae``) is small: its LSTMs and CNN at
batch 16 keep two torch threads only partly busy, so two single-thread
repeats at once give ~1.5x the repeats per second of one two-thread repeat
(``benchmarks/bench_repeats.py``). ``repeat_pool`` gives the pool those jobs
run in: ``spawn`` processes (a forked process would inherit torch's thread
pool mid-use), each pinned through ``CMISC_THREADS`` to its share of the cores,
so a repeat's result depends on that thread count and not on what runs beside
it. Every job seeds itself, so the repeats equal a serial run on the same
threads (``tests/test_train_classifier.py``).

Spawned workers import the caller's main module again: a script of one's own
that trains ``--no-ae`` repeats on a CPU needs ``if __name__ == "__main__":``
(the ``cmisc`` command and ``python -m cmisc_model`` are safe as they are).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import torch

from cmisc_model.training.determinism import THREADS_ENV, available_cores


def pool_size(workers: int, jobs: int, device: str | torch.device | None = None) -> int:
    """Processes worth starting: ``workers`` capped at the cores and the jobs; 1 (run in this
    process) on a GPU, where one repeat already fills the device."""
    dev = torch.device(device) if device is not None else None
    if (dev is not None and dev.type == "cuda") or (dev is None and torch.cuda.is_available()):
        return 1
    return max(1, min(workers, available_cores(), jobs))


def _init_worker(threads: int, level: int) -> None:
    os.environ[THREADS_ENV] = str(threads)
    torch.set_num_threads(threads)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s")


def repeat_pool(workers: int, jobs: int, device: str | torch.device | None = None) -> ProcessPoolExecutor | None:
    """A pool of ``pool_size`` processes sharing the cores evenly, or None when that is 1.
    The caller shuts it down (``with`` block)."""
    n = pool_size(workers, jobs, device)
    if n < 2:
        return None
    threads = max(1, available_cores() // n)
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(threads, logging.getLogger().getEffectiveLevel()))
