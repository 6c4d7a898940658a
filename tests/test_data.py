"""The autoencoder's data pipeline: dataset, collate, length-bucketed sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cmisc_model.text.normalise import TextConfig, TextNormaliser
from cmisc_model.training.data import (
    AutoencoderDataset,
    BucketBatchSampler,
    collate,
    pad_ids,
    usable_rows,
)

VOCAB = {"<pad>": 0, "<unk>": 1, "a": 2, "red": 3, "ball": 4, ".": 5, "the": 6}


def write_jpeg(path, w=60, h=40, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path, "JPEG")
    return str(path)


def row(pair_id, path, sentences, status="ok"):
    return {"pair_id": pair_id, "source": "coco", "image_path": path, "image_status": status,
            "text_blocks": [{"titles": [], "sentences": sentences}]}


@pytest.fixture
def rows(tmp_path):
    return [
        row("p0", write_jpeg(tmp_path / "0.jpg", 60, 40, 0), ["A red ball.", "The zebra."]),
        row("p1", write_jpeg(tmp_path / "1.jpg", 40, 70, 1), ["The ball."]),
        row("p2", write_jpeg(tmp_path / "2.jpg", 50, 50, 2), ["A red red red ball the ball."]),
    ]


def test_items_and_batch_have_ids_padding_and_image_range(rows):
    ds = AutoencoderDataset(rows, VOCAB, TextNormaliser(TextConfig()), image_size=32, train=True)
    assert ds.ids[0] == [[2, 3, 4, 5], [6, 1, 5]]  # "zebra" is unknown -> 1
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["images"].shape == (3, 3, 32, 32)
    assert batch["images"].min() >= -1.0 and batch["images"].max() <= 1.0
    assert batch["tokens"].shape == (3, 2, 8)  # most sentences x longest sentence
    assert batch["tokens"][1].tolist()[0][:3] == [6, 4, 5] and batch["tokens"][1, 1].sum() == 0
    assert batch["tokens"][0, 0, 4:].sum() == 0  # padded with 0 after the real tokens
    assert batch["pair_ids"] == ["p0", "p1", "p2"] and batch["n_skipped"] == 0
    assert pad_ids([[]]).shape == (1, 1, 1)  # an empty text is one pad sentence


def test_augmentation_depends_only_on_seed_epoch_index(rows):
    norm = TextNormaliser(TextConfig())
    a = AutoencoderDataset(rows, VOCAB, norm, 32, train=True, seed=3)
    b = AutoencoderDataset(rows, VOCAB, norm, 32, train=True, seed=3)
    assert torch.equal(a[0]["image"], b[0]["image"])
    crops = set()
    for epoch in range(12):
        a.set_epoch(epoch)
        crops.add(a[0]["image"].sum().item())
    assert len(crops) > 3  # random crops / flips vary across epochs
    ev = AutoencoderDataset(rows, VOCAB, norm, 32, train=False)
    ev.set_epoch(5)
    assert torch.equal(ev[0]["image"], AutoencoderDataset(rows, VOCAB, norm, 32, train=False)[0]["image"])


def test_undecodable_image_is_skipped_and_counted(rows, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    rows.append(row("bad", str(bad), ["A ball."]))
    rows.append(row("missing", str(tmp_path / "nope.jpg"), ["A ball."]))
    ds = AutoencoderDataset(rows, VOCAB, TextNormaliser(TextConfig()), 32, train=True)
    assert ds[3] is None and ds[4] is None
    batch = collate([ds[i] for i in range(5)])
    assert batch["n_skipped"] == 2 and batch["pair_ids"] == ["p0", "p1", "p2"]
    empty = collate([None, None])
    assert empty["n_skipped"] == 2 and empty["images"].shape[0] == 0


def test_usable_rows_counts_rows_without_an_image(rows):
    rows.append(row("r", None, ["x"], status="rejected:too-large-bytes"))
    rows.append(row("m", None, ["x"], status="missing"))
    ok, n_bad = usable_rows(rows)
    assert [r["pair_id"] for r in ok] == ["p0", "p1", "p2"] and n_bad == 2


def lengths(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(1, 50)), int(rng.integers(1, 40))) for _ in range(n)]


def test_bucketed_sampler_is_deterministic_complete_and_limits_padding():
    lens = lengths(203)
    s = BucketBatchSampler(lens, batch_size=16, shuffle=True, seed=7, chunk_batches=4)
    s.set_epoch(1)
    first = list(s)
    assert first == list(s)  # same seed and epoch -> same batches
    s.set_epoch(2)
    assert list(s) != first
    flat = [i for b in first for i in b]
    assert sorted(flat) == list(range(203)) and len(first) == len(s) == 13

    def padded_cells(batches):
        return sum(len(b) * max(lens[i][0] for i in b) * max(lens[i][1] for i in b) for b in batches)

    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(203, generator=g).tolist()
    unbucketed = [perm[k : k + 16] for k in range(0, 203, 16)]
    assert padded_cells(first) < 0.8 * padded_cells(unbucketed)

    s.set_epoch(1, start=5)  # resume inside an epoch
    assert list(s) == first[5:] and len(s) == 8


def test_sampler_shards_by_rank_with_equal_step_counts():
    lens = lengths(50)
    shards = []
    for rank in range(2):
        s = BucketBatchSampler(lens, batch_size=8, shuffle=True, seed=1, rank=rank, world_size=2)
        s.set_epoch(0)
        shards.append(list(s))
        assert len(shards[-1]) == len(s) == 4  # 7 batches padded to 8, 4 per rank
    idx0 = {i for b in shards[0] for i in b}
    idx1 = {i for b in shards[1] for i in b}
    assert idx0 | idx1 == set(range(50))
    # only the padding batch (a repeat of the first) may appear on both ranks
    assert len(idx0 & idx1) <= 8


def test_eval_sampler_sorts_by_length():
    lens = lengths(40)
    batches = list(BucketBatchSampler(lens, batch_size=10, shuffle=False))
    order = [i for b in batches for i in b]
    assert [lens[i] for i in order] == sorted(lens)
