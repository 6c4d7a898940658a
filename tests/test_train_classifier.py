"""``cmisc train-cl`` on a tiny synthetic labelled set and a tiny autoencoder built in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from cmisc_model import schemas as S
from cmisc_model.corpus.annotations import LabelledSplitConfig, repeat_split, split_labelled
from cmisc_model.corpus.vocab import vocab_hash
from cmisc_model.errors import CmiscError
from cmisc_model.evaluation.report import check_scored_once, read_predictions
from cmisc_model.models.autoencoder import Autoencoder
from cmisc_model.models.config import ClassifierConfig, ModelConfig
from cmisc_model.text.normalise import TextConfig
from cmisc_model.training import classifier as TC
from cmisc_model.training.checkpoint import plain_config, save_checkpoint
from cmisc_model.training.data import DataConfig
from cmisc_model.training.workers import pool_size

SEED = 7
WORDS = ["a", "red", "blue", "green", "ball", "box", "cat", "dog", "on", "under", "the", "big", "small"]
TINY = ModelConfig(sentence_dim=16, text_dim=16, image_dim=16, image_size=32, small_cnn_channels=(8, 8),
                   thumb_size=8, decoder_maps=(4, 3), article_dim=64)


def tiny_params(**train) -> TC.ClassifierParams:
    train = {"batch_size": 4, "eval_batch_size": 5, "epochs": 2, "repeats": 2, **train}
    train.setdefault("no_ae_epochs", train["epochs"])  # the same number of epochs with and without the AE
    return TC.ClassifierParams(model=ClassifierConfig(hidden_dim=8), train=TC.ClassifierTrainConfig(**train))


def make_world(root: Path, n: int = 45) -> tuple[Path, Path]:
    """labelled.parquet (n pairs, JPEGs, split as the corpus stage does) and an AE folder."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = root / "img" / f"{i}.jpg"
        arr = np.zeros((40, 48, 3), np.uint8)
        arr[..., i % 3] = 200
        Image.fromarray(arr).save(path, "JPEG")
        sentences = [" ".join(rng.choice(WORDS, 5)) + "." for _ in range(1 + i % 3)]
        rows.append({"pair_id": f"p{i:03d}", "source": "bbc", "doc_id": str(i), "position": "lead",
                     "section_path": [], "text_blocks": [{"titles": [], "sentences": sentences}],
                     "image_path": str(path), "image_status": "ok",
                     "cmi": S.CMI_LEVELS[i % 5], "sc": S.SC_LEVELS[(i // 5) % 2 + 3]})
    rows = split_labelled(rows, SEED, LabelledSplitConfig())
    labelled = root / "labelled.parquet"
    S.write_table(S.from_rows(rows, S.LABELLED), labelled, S.LABELLED)

    ae_dir = root / "ae"
    tokens = ["<pad>", "<unk>", *WORDS, "."]
    vocab = S.from_rows([{"token": t, "id": i, "count": 10} for i, t in enumerate(tokens)], S.VOCAB)
    S.write_table(vocab, ae_dir / "vocab.parquet", S.VOCAB)
    vecs = rng.normal(0, 0.1, (len(tokens), 300)).astype(np.float32)
    S.write_table(S.from_rows([{"token": t, "id": i, "vector": vecs[i].tolist()} for i, t in enumerate(tokens)],
                              S.WORD2VEC), ae_dir / "word2vec.parquet", S.WORD2VEC)
    cfg = TINY.replace(vocab_size=len(tokens))
    torch.manual_seed(0)
    ae = Autoencoder(cfg)
    save_checkpoint({"config": plain_config(cfg), "text": plain_config(TextConfig()),
                     "data": {"image_size": cfg.image_size, "resize_factor": 1.15},
                     "vocab_hash": vocab_hash(vocab), "step": 3, "model": ae.state_dict()}, ae_dir / "model.pt")
    return labelled, ae_dir


def run(labelled, ae_dir, out, params=None, repeats=2, **kw):
    return TC.train_classifier(labelled, ae_dir, out, params or tiny_params(), repeats, SEED,
                               LabelledSplitConfig(), data_cfg=DataConfig(bucket_chunk=2), device="cpu", **kw)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("cl"))


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    labelled, ae_dir = world
    out = tmp_path_factory.mktemp("cl_out") / "classifier"
    live = out.parent / "live"
    metrics = run(labelled, ae_dir, out, live_dir=live)
    return out, live, metrics


def test_every_test_item_scored_once_per_repeat_with_probabilities(world, trained):
    labelled, _ = world
    out, live, _ = trained
    preds = read_predictions(out / "predictions.parquet").to_pylist()
    rows = S.read_table(labelled, S.LABELLED).to_pylist()
    expected = {k: {r["pair_id"]: r for r in repeat_split(rows, SEED, k, LabelledSplitConfig()) if r["split"] == "test"}
                for k in (0, 1)}
    assert {r["repeat"] for r in preds} == {0, 1}
    # the intact test split and its ablations (image or text taken away), every item once in each
    assert {r["system"] for r in preds} == {"classifier", "classifier:images_shuffled", "classifier:images_blank",
                                            "classifier:texts_shuffled"}
    check_scored_once(preds, expected)  # raises on a missing, duplicated or foreign item
    for k in (0, 1):
        assert sorted(r["pair_id"] for r in preds if r["repeat"] == k and r["system"] == "classifier") \
            == sorted(expected[k])
    assert expected[0].keys() != expected[1].keys()  # repeat 1 is another split
    for r in preds:
        for task in ("cmi", "sc"):
            assert abs(sum(r[f"{task}_prob"]) - 1) < 1e-4
            assert r[f"{task}_pred"] == int(np.argmax(r[f"{task}_prob"]))

    # model.pt: safe to load, self-describing; the folder is self-contained
    state = torch.load(out / "model.pt", weights_only=True)
    assert state["format"] == TC.FORMAT and state["system"] == "classifier"
    assert state["classifier"]["hidden_dim"] == 8 and state["config"]["article_dim"] == 64
    assert state["vocab_hash"] == vocab_hash(S.read_table(out / "vocab.parquet", S.VOCAB))
    assert (out / "word2vec.parquet").exists()
    saved = json.loads((out / "metrics.json").read_text())
    assert [r["repeat"] for r in saved["per_repeat"]] == [0, 1]
    assert all(r["n_test"] == len(expected[r["repeat"]]) for r in saved["per_repeat"])
    assert 0 <= saved["test_mean"]["cmi_accuracy"] <= 1
    # DVCLive (repeat 0): train loss per step, val accuracies per epoch
    assert (live / "plots" / "metrics" / "train" / "loss.tsv").exists()
    val = (live / "plots" / "metrics" / "val" / "cmi_accuracy.tsv").read_text().strip().splitlines()
    assert len(val) == 1 + 2  # header + 2 epochs
    # test.json, the stage's DVC metric (what `dvc exp show` compares): the K-repeat test
    # accuracy and the drop with shuffled images, recomputed here from the predictions
    summary = json.loads((live / "test.json").read_text())
    assert summary["sc"]["mean"] == pytest.approx(saved["test_mean"]["sc_accuracy"], abs=1e-4)
    shuffled = [r for r in preds if r["system"] == "classifier:images_shuffled"]
    acc = sum(r["cmi_pred"] == r["cmi_true"] for r in shuffled) / len(shuffled)
    assert summary["cmi"]["shuffled_drop"] == pytest.approx(100 * (saved["test_mean"]["cmi_accuracy"] - acc), abs=1e-3)


def test_encoder_starts_from_the_autoencoder_only_without_no_ae(world):
    _, ae_dir = world
    ae = TC.read_autoencoder(ae_dir)
    want = ae.state["model"]["encoder.fuse.weight"]
    with_ae = TC.build_classifier(ae, ClassifierConfig(hidden_dim=8), "autoencoder")
    no_ae = TC.build_classifier(ae, ClassifierConfig(hidden_dim=8), "random")
    assert torch.equal(with_ae.encoder.fuse.weight, want)
    assert not torch.equal(no_ae.encoder.fuse.weight, want)
    # --no-ae still starts its words from Word2Vec
    row = torch.tensor(S.read_table(ae_dir / "word2vec.parquet", S.WORD2VEC).column("vector")[3].as_py())
    assert torch.allclose(no_ae.encoder.embed.weight[3], row)


def test_model_selection_never_reads_the_test_split(world, tmp_path, monkeypatch):
    labelled, ae_dir = world
    rows = S.read_table(labelled, S.LABELLED).to_pylist()
    selected_on: list[set[str]] = []
    real = TC.evaluate_split

    def spy(model, ds, *a, **kw):
        selected_on.append(set(ds.pair_ids))
        return real(model, ds, *a, **kw)

    monkeypatch.setattr(TC, "evaluate_split", spy)
    # one process: a spy cannot see into worker processes
    run(labelled, ae_dir, tmp_path / "noae", tiny_params(epochs=3, parallel_repeats=1), repeats=2, no_ae=True)
    assert len(selected_on) == 2 * 3  # each epoch of each repeat
    for k in (0, 1):
        split = repeat_split(rows, SEED, k, LabelledSplitConfig())
        test = {r["pair_id"] for r in split if r["split"] == "test"}
        val = {r["pair_id"] for r in split if r["split"] == "val"}
        for seen in selected_on[3 * k : 3 * k + 3]:
            assert seen == val and not seen & test
    preds = read_predictions(tmp_path / "noae" / "predictions.parquet").to_pylist()
    assert {r["system"] for r in preds if ":" not in r["system"]} == {"classifier_no_ae"}


@pytest.mark.skipif(pool_size(2, 3, "cpu") < 2, reason="needs 2 cores for 2 worker processes")
def test_no_ae_repeats_in_worker_processes_equal_a_serial_run_on_their_threads(world, tmp_path, monkeypatch):
    labelled, ae_dir = world
    pooled = run(labelled, ae_dir, tmp_path / "pooled", tiny_params(parallel_repeats=2), repeats=3, no_ae=True)
    monkeypatch.setenv("CMISC_THREADS", "1")  # what each of the two workers runs on
    serial = run(labelled, ae_dir, tmp_path / "serial", tiny_params(parallel_repeats=1), repeats=3, no_ae=True)
    assert [r["threads"] for r in pooled["per_repeat"]] == [1, 1, 1]
    for a, b in zip(pooled["per_repeat"], serial["per_repeat"], strict=True):
        assert a["repeat"] == b["repeat"] and a["history"] == b["history"] and a["test"] == b["test"]
    assert read_predictions(tmp_path / "pooled" / "predictions.parquet").equals(
        read_predictions(tmp_path / "serial" / "predictions.parquet"))
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True)["model"] for d in ("pooled", "serial"))
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_selection_keeps_the_best_validation_epoch():
    a = {"harmonic_mean": 0.5, "loss": 2.0}
    assert TC.better({"harmonic_mean": 0.6, "loss": 3.0}, a, "accuracy")
    assert TC.better({"harmonic_mean": 0.5, "loss": 1.0}, a, "accuracy")  # tie -> lower loss
    assert not TC.better({"harmonic_mean": 0.4, "loss": 0.1}, a, "accuracy")
    assert TC.better({"harmonic_mean": 0.4, "loss": 0.1}, a, "loss")


def test_autoencoder_with_another_vocabulary_is_refused(world, tmp_path):
    labelled, ae_dir = world
    other = tmp_path / "ae"
    other.mkdir()
    for name in ("model.pt", "word2vec.parquet"):
        (other / name).write_bytes((ae_dir / name).read_bytes())
    vocab = S.read_table(ae_dir / "vocab.parquet", S.VOCAB).to_pylist()
    vocab[2], vocab[3] = {**vocab[2], "token": vocab[3]["token"]}, {**vocab[3], "token": vocab[2]["token"]}
    S.write_table(S.from_rows(vocab, S.VOCAB), other / "vocab.parquet", S.VOCAB)
    with pytest.raises(CmiscError, match="vocabulary"):
        run(labelled, other, tmp_path / "out")
    (other / "model.pt").unlink()
    with pytest.raises(CmiscError, match="model.pt is missing"):
        run(labelled, other, tmp_path / "out")
    assert not (tmp_path / "out" / "predictions.parquet").exists()


def test_train_fraction_subsamples_the_training_split(world, tmp_path):
    labelled, ae_dir = world
    metrics = run(labelled, ae_dir, tmp_path / "out", tiny_params(epochs=1, train_fraction=0.5), repeats=1)
    full = sum(r["split"] == "train" for r in S.read_table(labelled, S.LABELLED).to_pylist())
    assert metrics["per_repeat"][0]["n_train"] == round(full / 2)
    systems = pq.read_table(tmp_path / "out" / "predictions.parquet").column("system").to_pylist()
    assert systems.count("classifier") == metrics["per_repeat"][0]["n_test"]
