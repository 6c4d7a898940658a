"""The autoencoder's input pipeline: corpus rows -> (image, token ids) batches.

- ``AutoencoderDataset``: one item per pair with a stored image. The image is
  decoded, its shorter side resized to ``resize_factor x image_size``
  (aspect kept), then cropped to ``image_size``: a random crop and a random
  horizontal flip when training, the centre crop otherwise. The same crop is
  the input and the reconstruction target, in [-1, 1].
  A flip is label-safe only together with the text: the labels depend on
  left/right positions ("in the upper left"), so a flipped image gets its
  text's left/right words swapped (``MIRROR_WORDS``). The crop must not
  cut an object the text describes: at ``resize_factor`` 1 a square image is
  only resized and a random crop moves along the longer side of other images
  (``tests/test_augment.py`` checks both on rendered scenes;
  ``sample_world/audit.py`` counts the labels a crop would make undecidable).
  Departure from 2017: 2017 squashed every image to 346x346 before the crop
  and put colour jitter into the reconstruction target too (original_impl.md
  §§5, 11); we keep the aspect ratio and use no colour jitter.
  The random choices come from a generator seeded by (seed, epoch, index), so
  they are the same with or without DataLoader workers and after a resume.
- Text: ``TextNormaliser.blocks`` -> token ids per sentence (unknown -> 1),
  computed once when the dataset is built.
- An image that fails to decode makes its item ``None``; ``collate`` drops it
  and counts it in ``batch["n_skipped"]``, so a bad file never stops an epoch.
- ``BucketBatchSampler``: batches of similar (sentences, tokens) shapes to
  limit padding (the model pads rather than packs). Deterministic given the
  seed and epoch; for DistributedDataParallel every rank gets the same number
  of batches, a disjoint share of them.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from cmisc_model.text.normalise import TextNormaliser

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """params ``autoencoder.data``."""

    # Shorter side -> resize_factor x image_size before the crop. 2017: 346/300 = 1.15,
    # whose random crop can cut an object near the frame out of the image its text describes.
    resize_factor: float = 1.0
    hflip: bool = True  # random horizontal flip when training, the text's left/right words mirrored with it
    # DataLoader worker processes (0 = decode in the training process). 0 on CPU:
    # decoding is ~1 % of a CPU step, and workers fight torch's spinning OpenMP
    # threads (measured 3 vs 32 samples/s on 2 cores; OMP_WAIT_POLICY=PASSIVE
    # avoids it). On a GPU, use several.
    num_workers: int = 0
    bucket_chunk: int = 50  # batches per shuffled chunk that is sorted by length


# --------------------------------------------------------------------------- images

# Words swapped in a text whose image is mirrored. 2017 flipped the image alone,
# which changes the label of a text that says where things are.
MIRROR_WORDS = {"left": "right", "right": "left"}


def mirror_map(vocab: Mapping[str, int]) -> dict[int, int]:
    """Token id -> the id of its mirrored word, for the ``MIRROR_WORDS`` in ``vocab``."""
    return {vocab[a]: vocab[b] for a, b in MIRROR_WORDS.items() if a in vocab and b in vocab}


def mirror_ids(doc: Sequence[Sequence[int]], mapping: Mapping[int, int]) -> list[list[int]]:
    return [[mapping.get(t, t) for t in sentence] for sentence in doc]


def load_image(path: str | Path, image_size: int, resize_factor: float, train: bool,
               rng: random.Random | None = None, flip: bool = False) -> torch.Tensor:
    """Decode an RGB image -> float (3, image_size, image_size) in [-1, 1].

    ``train``: a random crop drawn from ``rng``; otherwise the centre crop.
    ``flip``: mirror left-right (the caller mirrors the text with it).
    Raises OSError/ValueError (PIL's errors) for a file that cannot be decoded.
    """
    short = max(image_size, round(resize_factor * image_size))
    with Image.open(path) as img:
        img.draft("RGB", (short, short))  # JPEG: decode at a reduced scale when the file is large
        img = img.convert("RGB")
        w, h = img.size
        scale = short / min(w, h)
        new_w, new_h = max(short, round(w * scale)), max(short, round(h * scale))
        img = img.resize((new_w, new_h), Image.BILINEAR, reducing_gap=3.0)
    if train:
        assert rng is not None
        left = rng.randint(0, new_w - image_size)
        top = rng.randint(0, new_h - image_size)
    else:
        left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
    img = img.crop((left, top, left + image_size, top + image_size))
    if flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())  # (H, W, 3)
    return x.permute(2, 0, 1).float().div_(127.5).sub_(1.0)  # (3, H, W) in [-1, 1]


# --------------------------------------------------------------------------- dataset

def usable_rows(rows: Sequence[Mapping]) -> tuple[list[Mapping], int]:
    """Rows the autoencoder can use (``image_status == "ok"`` with a path) and how many were not."""
    ok = [r for r in rows if r.get("image_status") == "ok" and r.get("image_path")]
    return ok, len(rows) - len(ok)


class AutoencoderDataset(Dataset):
    """Pairs rows (dicts with PAIRS columns, image ok) -> items for ``collate``.

    An item is ``{"index", "pair_id", "image" (3, H, W), "ids" list[list[int]],
    "image_key"}``, or ``None`` when the image cannot be decoded. ``image_key``
    is the image file, so that image-text matching can tell pairs that share
    an image (COCO's captions) apart.
    """

    def __init__(self, rows: Sequence[Mapping], vocab: Mapping[str, int], normaliser: TextNormaliser,
                 image_size: int, train: bool, resize_factor: float = 1.0, hflip: bool = True,
                 seed: int = 0):
        self.pair_ids = [r["pair_id"] for r in rows]
        self.paths = [r["image_path"] for r in rows]
        self.ids = [
            [[vocab.get(t, 1) for t in sentence] for sentence in normaliser.blocks(r["text_blocks"], r["source"])]
            for r in rows
        ]
        self.image_size = image_size
        self.train = train
        self.resize_factor = resize_factor
        self.hflip = hflip
        self.seed = seed
        self.epoch = 0
        self.mirror = mirror_map(vocab)
        if train and hflip and len(self.mirror) < len(MIRROR_WORDS):
            log.warning("hflip: 'left'/'right' are not both in the vocabulary, so a mirrored image's "
                        "text cannot be mirrored; its label may no longer hold")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def lengths(self) -> list[tuple[int, int]]:
        """(sentences, longest sentence) per item: the bucketing key."""
        return [(len(s), max((len(t) for t in s), default=0)) for s in self.ids]

    def __getitem__(self, index: int) -> dict | None:
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}") if self.train else None
        flip = self.train and self.hflip and rng.random() < 0.5
        try:
            image = load_image(self.paths[index], self.image_size, self.resize_factor, self.train, rng, flip)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            log.warning("pair %s: image %s cannot be decoded, skipped (%s)", self.pair_ids[index],
                        self.paths[index], e)
            return None
        ids = mirror_ids(self.ids[index], self.mirror) if flip else self.ids[index]
        return {"index": index, "pair_id": self.pair_ids[index], "image": image, "ids": ids,
                "image_key": self.paths[index]}


def pad_ids(docs: Sequence[Sequence[Sequence[int]]]) -> torch.Tensor:
    """Token ids per document -> long (B, S, T), padded with 0 to the batch's
    longest text and sentence (at least 1 x 1, so an empty text is one pad sentence)."""
    S = max([len(d) for d in docs] + [1])
    T = max([len(s) for d in docs for s in d] + [1])
    out = torch.zeros(len(docs), S, T, dtype=torch.long)
    for b, doc in enumerate(docs):
        for s, sentence in enumerate(doc):
            out[b, s, : len(sentence)] = torch.tensor(sentence, dtype=torch.long)
    return out


def collate(items: Sequence[dict | None]) -> dict:
    """Items -> ``{"images" (B,3,H,W), "tokens" (B,S,T), "pair_ids", "indices", "image_keys", "n_skipped"}``.

    ``None`` items (undecodable images) are dropped and counted; a batch may
    therefore be empty (B = 0), which the training loop skips.
    """
    kept = [it for it in items if it is not None]
    n_skipped = len(items) - len(kept)
    if not kept:
        return {"images": torch.zeros(0, 3, 1, 1), "tokens": torch.zeros(0, 1, 1, dtype=torch.long),
                "pair_ids": [], "indices": [], "image_keys": [], "n_skipped": n_skipped}
    return {
        "images": torch.stack([it["image"] for it in kept]),
        "tokens": pad_ids([it["ids"] for it in kept]),
        "pair_ids": [it["pair_id"] for it in kept],
        "indices": [it["index"] for it in kept],
        "image_keys": [it.get("image_key") for it in kept],
        "n_skipped": n_skipped,
    }


# --------------------------------------------------------------------------- sampler

class BucketBatchSampler(Sampler[list[int]]):
    """Length-bucketed batches of indices.

    Training (``shuffle=True``): shuffle all items with a generator seeded by
    (seed, epoch), cut the order into chunks of ``chunk_batches x batch_size``,
    sort each chunk by ``lengths`` and cut it into batches, then shuffle the
    batches. Evaluation (``shuffle=False``): sort everything by length once.

    DDP: the batch list is padded (by repeating its first batches) to a
    multiple of ``world_size`` and rank r takes batches r, r + world_size, ...,
    so every rank steps the same number of times. ``set_epoch(epoch, start)``
    skips the first ``start`` batches of this rank's epoch (exact resume).
    """

    def __init__(self, lengths: Sequence[tuple[int, int]], batch_size: int, shuffle: bool,
                 seed: int = 0, rank: int = 0, world_size: int = 1, chunk_batches: int = 50):
        if batch_size < 1:
            raise ValueError(f"batch_size {batch_size} must be at least 1")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.chunk = max(1, chunk_batches) * batch_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _all_batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = sorted(range(n), key=lambda i: (self.lengths[i], i))
            return [order[k : k + self.batch_size] for k in range(0, n, self.batch_size)]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(n, generator=g).tolist()
        batches = []
        for c in range(0, n, self.chunk):
            chunk = sorted(perm[c : c + self.chunk], key=lambda i: self.lengths[i])
            batches += [chunk[k : k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
        order = torch.randperm(len(batches), generator=g).tolist()
        return [batches[i] for i in order]

    def _rank_batches(self) -> list[list[int]]:
        batches = self._all_batches()
        if self.world_size > 1 and batches:
            total = math.ceil(len(batches) / self.world_size) * self.world_size
            batches = batches + batches[: total - len(batches)]
        return batches[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._rank_batches()[self.start :]

    def batches_per_epoch(self) -> int:
        n_batches = math.ceil(len(self.lengths) / self.batch_size)
        return math.ceil(n_batches / self.world_size)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch() - self.start)


def eval_loader(ds: AutoencoderDataset, batch_size: int, indices: Sequence[int] | None = None) -> DataLoader:
    """Every item once (or the items ``indices``), batches sorted by length, the last partial batch kept."""
    lengths = ds.lengths()
    if indices is None:
        sampler = BucketBatchSampler(lengths, batch_size, shuffle=False)
    else:
        some = BucketBatchSampler([lengths[i] for i in indices], batch_size, shuffle=False)
        sampler = [[indices[j] for j in batch] for batch in some]
    return DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=0)
