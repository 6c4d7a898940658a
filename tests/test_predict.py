"""``cmisc predict`` on real COCO images and captions, with a tiny classifier trained in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cmisc_model import cli
from cmisc_model import schemas as S
from tests.conftest import REALDATA as REAL
from tests.test_train_classifier import make_world, run, tiny_params

COCO = REAL / "coco" / "coco-mini"
IMAGE_ID = 205401


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    labelled, ae_dir = make_world(root)
    out = root / "classifier"
    run(labelled, ae_dir, out, tiny_params(epochs=1), repeats=1)
    return out


@pytest.fixture
def coco_pair(tmp_path):
    captions = json.loads((COCO / "captions_val2017.json").read_text(encoding="utf-8"))
    text = [a["caption"] for a in captions["annotations"] if a["image_id"] == IMAGE_ID]
    assert len(text) == 5
    path = tmp_path / "captions.txt"
    path.write_text("\n".join(text), encoding="utf-8")
    return COCO / "val2017" / f"{IMAGE_ID:012d}.jpg", path


@pytest.fixture
def cmisc(monkeypatch):
    """``cmisc ...`` through the real CLI dispatcher (predict registered if the lead has not yet)."""
    monkeypatch.setitem(cli.COMMANDS, "predict", ("cmisc_model.inference.predict", "predict"))
    return cli.main


def check_record(rec: dict) -> None:
    """A scored SCORES record, as a user reads it."""
    assert rec["scored"] is True and rec["reason"] is None
    for task, levels in (("cmi", S.CMI_LEVELS), ("sc", S.SC_LEVELS)):
        probs = rec[f"{task}_prob"]
        assert len(probs) == len(levels) and abs(sum(probs) - 1) < 1e-3
        assert levels[0] <= rec[f"{task}_expected"] <= levels[-1]
        assert rec[f"{task}_level"] == levels[rec[f"{task}_pred"]]
        assert rec[f"{task}_expected"] == pytest.approx(sum(p * v for p, v in zip(probs, levels)), abs=1e-3)


def test_predict_one_real_coco_pair(model_dir, coco_pair, cmisc, capsys):
    image, text = coco_pair
    assert cmisc(["predict", "--model", str(model_dir), "--image", str(image), "--text-file", str(text)]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert list(out) == S.SCORES.names  # the same fields as a row of the batch Parquet
    check_record(out)
    assert out["pair_id"] is None
    # the all-caps caption has no full stop, so the splitter may join it with the next line
    assert 4 <= out["sentences"] <= 5 and out["tokens"] > 40
    # the tiny test model knows 13 words: real COCO captions are mostly unknown to it, and it says so
    assert out["unknown_tokens"] > out["tokens"] / 2
    assert len(out["warnings"]) == 1 and "unlike its training data" in out["warnings"][0]
    assert "the model knows only" in captured.err and "unlike its training data" in captured.err


def test_predict_text_is_a_literal_caption(model_dir, coco_pair, cmisc, capsys):
    image, _ = coco_pair
    assert cmisc(["predict", "--model", str(model_dir), "--image", str(image), "--text", "red dog."]) == 0
    out = json.loads(capsys.readouterr().out)
    check_record(out)
    assert out["sentences"] == 1 and out["tokens"] == 3


def test_predict_text_from_stdin(model_dir, coco_pair, cmisc, capsys, monkeypatch):
    import io
    import sys

    image, text = coco_pair
    for flag in ("--text", "--text-file"):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.read_bytes())))
        assert cmisc(["predict", "--model", str(model_dir), "--image", str(image), flag, "-"]) == 0, flag
        assert json.loads(capsys.readouterr().out)["tokens"] > 40, flag


def test_predict_pairs_file_in_batches(model_dir, tmp_path, cmisc, capsys):
    labelled = model_dir.parent / "labelled.parquet"
    out = tmp_path / "scores.parquet"
    assert cmisc(["predict", "--model", str(model_dir), "--pairs", str(labelled), "--out", str(out),
                  "--batch-size", "7"]) == 0
    table = S.read_table(out, S.SCORES)
    ids = S.read_table(labelled, S.LABELLED).column("pair_id").to_pylist()
    assert table.column("pair_id").to_pylist() == ids  # each once, in input order, last batch kept
    for r in table.to_pylist():
        check_record(r)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["scored"] == len(ids)


def test_batch_keeps_rows_it_cannot_score(model_dir, tmp_path, cmisc, capsys):
    """A missing image, a broken image and an empty text: kept, each with its reason."""
    rows = S.read_table(model_dir.parent / "labelled.parquet", S.LABELLED).select(S.PAIRS.names).to_pylist()[:4]
    rows[1] |= {"image_status": "missing", "image_path": None}
    rows[2] |= {"image_path": str(REAL / "images" / "truncated.jpg")}
    rows[3] |= {"text_blocks": []}
    pairs = tmp_path / "pairs.parquet"
    S.write_table(S.from_rows(rows, S.PAIRS), pairs, S.PAIRS)
    out = tmp_path / "scores.parquet"
    assert cmisc(["predict", "--model", str(model_dir), "--pairs", str(pairs), "--out", str(out)]) == 0
    got = S.read_table(out, S.SCORES).to_pylist()
    assert [r["pair_id"] for r in got] == [r["pair_id"] for r in rows]
    check_record(got[0])
    assert [r["scored"] for r in got] == [True, False, False, False]
    assert "image_status missing" in got[1]["reason"]
    assert "cannot be decoded" in got[2]["reason"]
    assert "no words" in got[3]["reason"]
    assert all(r["cmi_pred"] is None and r["sc_prob"] is None for r in got[1:])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rows"] == 4 and summary["scored"] == 1
    # cmisc inspect knows the scores schema
    assert cmisc(["inspect", "--json", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["schema"] == "scores" and info["rows"] == 4
    assert info["by_scored"] == {"false": 3, "true": 1}


def bad_cases(model_dir: Path, tmp: Path, image: Path, text: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp / "empty.txt"
    empty.write_text("  \n\n", encoding="utf-8")
    latin1 = tmp / "latin1.txt"
    latin1.write_bytes("Caf\xe9 near the lake.".encode("latin-1"))
    other_vocab = tmp / "other_vocab"
    other_vocab.mkdir()
    (other_vocab / "model.pt").write_bytes((model_dir / "model.pt").read_bytes())
    vocab = S.read_table(model_dir / "vocab.parquet", S.VOCAB).to_pylist()
    vocab.append({"token": "zeppelin", "id": len(vocab), "count": 10})
    S.write_table(S.from_rows(vocab, S.VOCAB), other_vocab / "vocab.parquet", S.VOCAB)
    no_model = tmp / "no_model"
    no_model.mkdir()
    (no_model / "vocab.parquet").write_bytes((model_dir / "vocab.parquet").read_bytes())
    broken_pt = tmp / "broken_pt"
    broken_pt.mkdir()
    (broken_pt / "vocab.parquet").write_bytes((model_dir / "vocab.parquet").read_bytes())
    (broken_pt / "model.pt").write_bytes((model_dir / "model.pt").read_bytes()[:500])
    older = tmp / "older"  # a model folder from a version of cmisc before the current model format
    older.mkdir()
    (older / "vocab.parquet").write_bytes((model_dir / "vocab.parquet").read_bytes())
    state = torch.load(model_dir / "model.pt", weights_only=True)
    state["format"] = "cmisc-classifier/0"
    torch.save(state, older / "model.pt")
    m = ["--model", str(model_dir)]
    t = ["--text-file", str(text)]
    return {
        "missing image": ([*m, "--image", str(tmp / "nope.jpg"), *t], "no such image"),
        "broken image": ([*m, "--image", str(REAL / "images" / "truncated.jpg"), *t], "cannot decode"),
        "empty text file": ([*m, "--image", str(image), "--text-file", str(empty)], "empty"),
        "empty caption": ([*m, "--image", str(image), "--text", "  "], "empty"),
        "non-UTF-8 text": ([*m, "--image", str(image), "--text-file", str(latin1)], "not UTF-8"),
        "missing text file": ([*m, "--image", str(image), "--text-file", str(tmp / "nope.txt")], "no such text"),
        "other vocabulary": (["--model", str(other_vocab), "--image", str(image), *t], "vocabulary"),
        "missing model.pt": (["--model", str(no_model), "--image", str(image), *t], "model.pt"),
        "truncated model.pt": (["--model", str(broken_pt), "--image", str(image), *t], "corrupt"),
        "model of an older format": (["--model", str(older), "--image", str(image), *t],
                                     "Rebuild it: dvc repro classifier"),
        "missing folder": (["--model", str(tmp / "none"), "--image", str(image), *t], "no such model"),
    }


def test_bad_input_is_one_line_error(model_dir, coco_pair, tmp_path, cmisc, capsys):
    image, text = coco_pair
    for name, (args, words) in bad_cases(model_dir, tmp_path, image, text).items():
        code = cmisc(["predict", *args])
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert code == 2, name
        assert len(err.splitlines()) == 1, (name, err)
        assert err.startswith("cmisc predict: error:") and words in err, (name, err)
        assert captured.out == "", name
