"""Autoencoder training stage, checkpoints and ``cmisc embed`` on a tiny synthetic corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from PIL import Image

from cmisc_model import schemas as S
from cmisc_model.errors import CmiscError
from cmisc_model.inference.embed import embed
from cmisc_model.models.config import ModelConfig
from cmisc_model.text.normalise import TextConfig
from cmisc_model.training import autoencoder as T
from cmisc_model.training.checkpoint import (
    check_compatible,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cmisc_model.training.data import DataConfig

REPO = Path(__file__).resolve().parents[1]

# A model small enough for a few CPU steps per second (the schemas fix 300-d
# words and 2400-d articles).
TINY_MODEL = {"sentence_dim": 16, "text_dim": 16, "image_dim": 16, "image_size": 32,
              "small_cnn_channels": [8, 8], "thumb_size": 8, "decoder_maps": [4, 3], "dropout": 0.3}
WORDS = ["a", "red", "blue", "green", "ball", "box", "cat", "dog", "on", "under", "the", "big", "small",
         "sits", "near"]


def tiny_params(**train) -> T.AutoencoderParams:
    return T.AutoencoderParams(
        model=ModelConfig(**{**TINY_MODEL, "small_cnn_channels": (8, 8), "decoder_maps": (4, 3)}),
        train=T.TrainConfig(**{"batch_size": 4, "eval_batch_size": 8, "epochs": 2, "log_every": 1,
                               "checkpoint_every": 2, "reconstructions": 4, **train}),
        data=DataConfig(num_workers=0, bucket_chunk=2),
    )


def make_world(root: Path, n: int = 20, n_val: int = 4, bad_images: int = 0) -> tuple[Path, Path]:
    """A CORPUS with n JPEG pairs (+ one rejected row), vocab.parquet and word2vec.parquet."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = root / "img" / f"{i}.jpg"
        arr = np.zeros((40 + i % 7, 48, 3), np.uint8)
        arr[..., i % 3] = 200
        arr[5:20, 5 + i % 10 : 25 + i % 10] = rng.integers(0, 255, 3)
        Image.fromarray(arr).save(path, "JPEG")
        if i < bad_images:
            path.write_bytes(b"not a jpeg")
        sentences = [" ".join(rng.choice(WORDS, int(rng.integers(3, 9)))) + " zebra."
                     for _ in range(int(rng.integers(1, 4)))]
        rows.append({"pair_id": f"p{i:03d}", "source": "coco", "doc_id": str(i), "position": "lead",
                     "section_path": [], "text_blocks": [{"titles": [], "sentences": sentences}],
                     "image_path": str(path), "image_status": "ok",
                     "split": "val" if i >= n - n_val else "train"})
    rows.append({"pair_id": "rej", "source": "coco", "doc_id": "r", "position": "lead", "section_path": [],
                 "text_blocks": [{"titles": [], "sentences": ["a ball"]}], "image_status": "rejected:svg-unsupported",
                 "split": "train"})
    corpus = root / "corpus.parquet"
    S.write_table(S.from_rows(rows, S.CORPUS), corpus, S.CORPUS)
    vocab_dir = root / "vocab"
    tokens = ["<pad>", "<unk>", *WORDS, "."]
    S.write_table(S.from_rows([{"token": t, "id": i, "count": 10} for i, t in enumerate(tokens)], S.VOCAB),
                  vocab_dir / "vocab.parquet", S.VOCAB)
    vecs = rng.normal(0, 0.1, (len(tokens), 300)).astype(np.float32)
    S.write_table(S.from_rows([{"token": t, "id": i, "vector": vecs[i].tolist()} for i, t in enumerate(tokens)],
                              S.WORD2VEC), vocab_dir / "word2vec.parquet", S.WORD2VEC)
    return corpus, vocab_dir


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path / "world")


def run(world, out, params, **kw):
    corpus, vocab_dir = world
    return T.train(corpus, vocab_dir, out, kw.pop("live_dir", None), params, TextConfig(), seed=5,
                   device="cpu", **kw)


# --------------------------------------------------------------------------- checkpoints

def test_checkpoint_round_trip_loads_with_weights_only(tmp_path):
    torch.manual_seed(0)
    state = {"config": {"text_dim": 16}, "vocab_hash": "abc", "step": 3, "model": {"w": torch.ones(2)},
             "rng": rng_state(), "history": {"first_val": {"loss": 1.5}, "best_val_loss": None}}
    expected = torch.rand(3)
    path = save_checkpoint(state, tmp_path / "c.pt")
    raw = torch.load(path, weights_only=True)  # plain values only: no pickled classes
    assert raw["step"] == 3 and raw["vocab_hash"] == "abc"
    torch.rand(5)
    set_rng_state(load_checkpoint(path)["rng"])
    assert torch.equal(torch.rand(3), expected)


def test_mismatched_or_corrupt_checkpoint_is_refused_with_what_differs(tmp_path):
    cfg = ModelConfig(**{**TINY_MODEL, "vocab_size": 10})
    path = save_checkpoint({"config": T.plain_config(cfg), "vocab_hash": "aaaa", "step": 1, "model": {}},
                           tmp_path / "c.pt")
    state = load_checkpoint(path)
    check_compatible(state, cfg, "aaaa", path)  # the same: fine
    check_compatible(state, cfg.replace(dropout=0.1), "aaaa", path)  # not a shape: fine
    with pytest.raises(CmiscError, match=r"vocabulary hash aaaa \(checkpoint\) != bbbb") as e:
        check_compatible(state, cfg.replace(text_dim=32), "bbbb", path)
    assert "text_dim 16 (checkpoint) != 32" in str(e.value) and "c.pt" in str(e.value)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CmiscError, match="truncated.pt: not a readable checkpoint"):
        load_checkpoint(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(1)}, other)
    with pytest.raises(CmiscError, match="other.pt: not a cmisc autoencoder checkpoint"):
        load_checkpoint(other)
    older = tmp_path / "older.pt"  # an autoencoder from a version before the current format
    torch.save({**torch.load(path, weights_only=True), "format": "cmisc-autoencoder/0"}, older)
    with pytest.raises(CmiscError, match=r"older.pt: .*'cmisc-autoencoder/0'.*Rebuild it: dvc repro autoencoder"):
        load_checkpoint(older)


# --------------------------------------------------------------------------- training

def test_resume_gives_the_same_next_step_loss(world, tmp_path):
    params = tiny_params(max_steps=8, checkpoint_every=3)
    straight: dict[int, float] = {}
    run(world, tmp_path / "a", params, on_step=lambda s, v: straight.__setitem__(s, v["loss"]))

    class Crash(Exception):
        pass

    def crash_at_7(step, values):
        if step == 7:
            raise Crash

    with pytest.raises(Crash):
        run(world, tmp_path / "b", params, on_step=crash_at_7)
    # 16 train pairs, batch 4: last.pt at steps 3, 4 (end of epoch 1) and 6 (inside epoch 2)
    state = load_checkpoint(tmp_path / "b" / "last.pt")
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (6, 1, 2)
    resumed: dict[int, float] = {}
    run(world, tmp_path / "b", params, resume=True, on_step=lambda s, v: resumed.__setitem__(s, v["loss"]))
    assert sorted(resumed) == [7, 8]
    for s, loss in resumed.items():
        assert loss == pytest.approx(straight[s], abs=1e-6), s


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(world, tmp_path, monkeypatch):
    real = T.compute_loss
    calls = {"n": 0}

    def nan_at_third_step(model, batch, device):
        out = real(model, batch, device)
        calls["n"] += 1
        if model.training and calls["n"] >= 4:  # 1 = first validation batch... then steps 1, 2, 3
            nan = torch.tensor(float("nan"))
            return out._replace(loss=out.loss * nan, image_loss=out.image_loss * nan)
        return out

    monkeypatch.setattr(T, "compute_loss", nan_at_third_step)
    out = tmp_path / "m"
    with pytest.raises(CmiscError, match=rf"non-finite loss at step 3 \(text [0-9.]+, image nan\); "
                                          rf"the last good checkpoint is {out / 'last.pt'} from step 2"):
        run(world, out, tiny_params())
    assert load_checkpoint(out / "last.pt")["step"] == 2


def test_train_ae_and_embed_cli_end_to_end(tmp_path, monkeypatch):
    corpus, vocab_dir = make_world(tmp_path / "w", n=20, n_val=4, bad_images=1)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["autoencoder"]["model"].update(TINY_MODEL)
    params["autoencoder"]["train"].update(batch_size=4, epochs=2, log_every=1, checkpoint_every=3)
    params["autoencoder"]["data"].update(num_workers=0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out, live = tmp_path / "model", tmp_path / "reports"
    assert T.cli_main(["--corpus", str(corpus), "--vocab", str(vocab_dir), "--out", str(out),
                       "--live-dir", str(live), "--params", str(tmp_path / "params.yaml"), "--device", "cpu"]) == 0
    for name in ("model.pt", "last.pt", "config.json", "vocab.parquet", "word2vec.parquet"):
        assert (out / name).exists(), name
    ckpt = torch.load(out / "model.pt", weights_only=True)
    # model.pt is the best validation checkpoint (after epoch 1 or 2); last.pt the end of training
    assert ckpt["config"]["text_dim"] == 16 and ckpt["step"] in (4, 8)  # 15 usable train pairs / 4 x 2 epochs
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 8
    # the declared metric keeps the key figures (few columns in `dvc exp show`); details.json the rest
    metrics = json.loads((live / "metrics.json").read_text())
    assert set(metrics) <= {"step", "val", "grounding"}
    assert set(metrics["val"]) == {"loss", "text_perplexity", "image_mse_vs_mean", "match_accuracy"}
    details = json.loads((live / "details.json").read_text())
    assert {"text_perplexity_drop", "image_mse_vs_mean", "image_r2", "match_accuracy", "text_perplexity"} <= set(details["val"])
    assert details["val"]["loss"] == metrics["val"]["loss"]
    # speed figures are beside the metrics, not among them
    assert "samples_per_s" not in json.dumps(details) and json.loads((live / "timings.json").read_text())["steps"] == 8
    assert details["data"]["skipped_images"] == 2  # one bad file, seen in each of 2 epochs
    assert details["data"]["unusable_rows"] == 1
    assert (live / "plots" / "metrics" / "train" / "loss.tsv").exists()
    png = Image.open(live / "plots" / "images" / "reconstructions.png")
    assert png.size[0] >= 4 * 2 * 32 and png.size[1] >= 32

    emb = tmp_path / "emb.parquet"
    from cmisc_model.inference.embed import cli_main as embed_main

    assert embed_main(["--model", str(out), "--pairs", str(corpus), "--out", str(emb), "--device", "cpu"]) == 0
    table = S.read_table(emb, S.EMBEDDINGS)
    ids = table.column("pair_id").to_pylist()
    assert len(ids) == 19 and "p000" not in ids and "rej" not in ids  # bad image and rejected row skipped
    vec = np.array(table.column("vector").to_pylist())
    assert vec.shape == (19, 2400) and np.isfinite(vec).all() and vec.std() > 0
    # eval mode, centre crop: embedding twice gives the same vectors
    embed(out, corpus, tmp_path / "emb2.parquet", batch_size=3, device="cpu")
    again = np.array(pq.read_table(tmp_path / "emb2.parquet").column("vector").to_pylist())
    np.testing.assert_allclose(again, vec, atol=1e-5)

    # a model folder with another vocabulary is refused
    other = tmp_path / "other_vocab"
    other.mkdir()
    vocab = S.read_table(vocab_dir / "vocab.parquet", S.VOCAB).to_pylist()
    vocab[-1]["token"] = "zebra"
    S.write_table(S.from_rows(vocab, S.VOCAB), other / "vocab.parquet", S.VOCAB)
    with pytest.raises(CmiscError, match="trained with vocabulary .* token ids would not match"):
        embed(out, corpus, tmp_path / "emb3.parquet", device="cpu", vocab_dir=other)

    # resuming with another architecture is refused, naming the field
    params["autoencoder"]["model"]["text_dim"] = 24
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(CmiscError, match=r"text_dim 16 \(checkpoint\) != 24"):
        T.cli_main(["--corpus", str(corpus), "--vocab", str(vocab_dir), "--out", str(out), "--live-dir",
                    str(live), "--params", str(tmp_path / "params.yaml"), "--device", "cpu", "--resume"])


def test_ddp_two_cpu_processes(tmp_path):
    corpus, vocab_dir = make_world(tmp_path / "w", n=20, n_val=4)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["autoencoder"]["model"].update(TINY_MODEL)
    params["autoencoder"]["train"].update(batch_size=2, epochs=1, log_every=1, checkpoint_every=100)
    params["autoencoder"]["data"].update(num_workers=0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node=2", "-m", "cmisc_model.training.autoencoder",
         "--corpus", str(corpus), "--vocab", str(vocab_dir), "--out", str(tmp_path / "model"),
         "--live-dir", str(tmp_path / "live"), "--params", str(tmp_path / "params.yaml")],
        check=False, capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = load_checkpoint(tmp_path / "model" / "last.pt")
    # 16 train pairs, 2 per rank and step, 2 ranks: 4 steps per epoch
    assert state["step"] == 4 and state["epoch"] == 1
    assert json.loads((tmp_path / "model" / "config.json").read_text())["world_size"] == 2
    assert (tmp_path / "live" / "metrics.json").exists()
