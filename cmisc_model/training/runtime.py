"""Where a training run executes: torchrun's ranks, the device, mixed precision.

Both training stages (autoencoder and classifier) start through
``setup_distributed`` and run their forward passes under ``amp_context``;
``machine`` describes the host for timings and the evaluation report.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from cmisc_model.training.determinism import available_cores, thread_count


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank (keeps DDP ranks in step)."""
        if self.world == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)


def setup_distributed(device: str | None = None) -> Dist:
    """Read torchrun's environment; init the process group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    else:
        torch.set_num_threads(max(1, available_cores() // world))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, dev)


def amp_context(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _cpu_name() -> str:
    try:  # Linux names the CPU model here; platform.processor() is often empty there
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> dict:
    """The host a run executes on: CPU, usable cores, torch threads, versions, GPU.

    ``threads`` is what the training stages use (``determinism.thread_count``):
    two runs compare only at the same threads, since the sums of a parallel
    kernel may be taken in another order."""
    cores = available_cores()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": _cpu_name(), "cores": cores, "threads": thread_count(), "torch": torch.__version__,
            "python": sys.version.split()[0], "gpu": gpu}


def machine_line(m: dict | None = None) -> str:
    """``machine()`` in one sentence, for reports."""
    m = m or machine()
    gpu = f"GPU {m['gpu']}" if m.get("gpu") else "no GPU"
    return (f"{m['cpu']}, {m['cores']} cores, torch {m['torch']} on {m['threads']} threads, "
            f"Python {m['python']}, {gpu}")
