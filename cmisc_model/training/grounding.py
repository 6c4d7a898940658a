"""Grounding: teach the sentences where to look and what to expect there, on the unlabelled corpus.

A phase at the end of autoencoder training (departure from 2017;
cross-attention fusion only). The image encoder is fixed: every training
image's regions are computed once (centre crop, eval mode). Then only the
sentence side of the matching is trained, ``where`` and ``what`` (word bags)
and the sentence matching head, with the autoencoder's text-level InfoNCE
(``Autoencoder.contrast``) at a batch far larger than reconstruction
affords: each text must pick its own image among ``ground_batch`` images.

Why a phase of its own: during reconstruction training, at batch 16, the
contrast has 15 negatives per text and shares the steps with the decoders;
on the sample world, sentences then looked at their region no more often
than chance. On the cached regions a step costs milliseconds, and 128
negatives make "a large red circle in the upper left" hard to satisfy by
chance, so position words find their cell and colour/size words their
features within a few hundred steps.
"""

from __future__ import annotations

import logging

import torch

from cmisc_model.models.encoders import EncodedParts
from cmisc_model.training.data import AutoencoderDataset, eval_loader, pad_ids

log = logging.getLogger(__name__)


@torch.no_grad()
def cached_regions(model, ds: AutoencoderDataset, batch_size: int, device: torch.device) -> list:
    """Every item's regions (G*G, D_i) from the fixed image encoder, or None where the image fails."""

    encoder = model.encoder
    was = encoder.training
    encoder.eval()
    out: list = [None] * len(ds)
    for batch in eval_loader(ds, batch_size):
        if batch["pair_ids"]:
            _, regions = encoder.image(batch["images"].to(device))  # (B, G*G, D_i)
            for b, i in enumerate(batch["indices"]):
                out[i] = regions[b].cpu()
    encoder.train(was)
    return out


def ground(model, ds: AutoencoderDataset, epochs: int, batch_size: int, lr: float, seed: int,
           device: torch.device, progress: bool = False) -> dict:
    """Train ``where``, ``what`` and the sentence matching head of ``model`` (an Autoencoder with
    cross-attention) on ``ds`` (un-augmented); -> {"loss", "accuracy"} of the last epoch
    (accuracy: share of texts whose own image scores highest in their batch)."""
    enc = model.encoder
    regions = cached_regions(model, ds, 64, device)
    items = [i for i, r in enumerate(regions) if r is not None and ds.ids[i]]
    params = [*enc.where.parameters(), *enc.what.parameters(), *model.sentence_match_head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=True)  # one kernel (see optim.py)
    g = torch.Generator().manual_seed(seed)
    model.train()
    last = {"loss": float("nan"), "accuracy": float("nan")}
    for epoch in range(epochs):
        order = [items[i] for i in torch.randperm(len(items), generator=g).tolist()]
        losses, accs = [], []
        for k in range(0, len(order) - batch_size + 1, batch_size):  # full batches: a fixed number of negatives
            idx = order[k : k + batch_size]
            tokens = pad_ids([ds.ids[i] for i in idx]).to(device)  # (B, S, T)
            look, claim = enc.ground(tokens)  # (B, S, G*G), (B, S, D_i)
            mask = (tokens != 0).any(dim=2)  # (B, S)
            parts = EncodedParts(torch.stack([regions[i][0] for i in idx]).to(device),  # unused
                                 torch.stack([regions[i] for i in idx]).to(device),
                                 claim.new_zeros(*mask.shape, 1), mask, look, claim)
            loss, accuracy = model.contrast(parts, [ds.paths[i] for i in idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            accs.append(accuracy.item())
        if losses:
            last = {"loss": sum(losses) / len(losses), "accuracy": sum(accs) / len(accs)}
        if progress or epoch == epochs - 1:
            log.info("grounding epoch %d/%d: loss %.3f, own image top-1 among %d: %.3f",
                     epoch + 1, epochs, last["loss"], batch_size, last["accuracy"])
    model.eval()
    return last
