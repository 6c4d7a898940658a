"""``cmisc predict`` on real COCO images and captions, with a tiny classifier trained in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cmisc_model import cli
from cmisc_model import predict as P
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
    monkeypatch.setitem(cli.COMMANDS, "predict", ("cmisc_model.predict", "predict"))
    return cli.main


def test_predict_one_real_coco_pair(model_dir, coco_pair, cmisc, capsys):
    image, text = coco_pair
    assert cmisc(["predict", "--model", str(model_dir), "--image", str(image), "--text", str(text)]) == 0
    out = json.loads(capsys.readouterr().out)
    for task, levels in (("cmi", S.CMI_LEVELS), ("sc", S.SC_LEVELS)):
        probs = out[task]["probabilities"]
        assert list(probs) == [f"{v:g}" for v in levels]
        assert abs(sum(probs.values()) - 1) < 1e-3
        assert levels[0] <= out[task]["expected"] <= levels[-1]
        assert out[task]["level"] == levels[out[task]["class"]]
        assert out[task]["expected"] == pytest.approx(sum(p * v for p, v in zip(probs.values(), levels)), abs=1e-3)
    # the all-caps caption has no full stop, so the splitter may join it with the next line
    assert 4 <= out["sentences"] <= 5 and out["tokens"] > 40


def test_predict_text_from_stdin(model_dir, coco_pair, cmisc, capsys, monkeypatch):
    import io
    import sys

    image, text = coco_pair
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.read_bytes())))
    assert cmisc(["predict", "--model", str(model_dir), "--image", str(image), "--text", "-"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"cmi", "sc"}


def test_predict_pairs_file_in_batches(model_dir, tmp_path, cmisc, capsys):
    labelled = model_dir.parent / "labelled.parquet"
    out = tmp_path / "scores.parquet"
    assert cmisc(["predict", "--model", str(model_dir), "--pairs", str(labelled), "--out", str(out),
                  "--batch-size", "7"]) == 0
    table = pq.read_table(out)
    assert table.schema.equals(P.SCORES, check_metadata=False)
    ids = S.read_table(labelled, S.LABELLED).column("pair_id").to_pylist()
    assert sorted(table.column("pair_id").to_pylist()) == sorted(ids)  # each once, last batch kept
    for r in table.to_pylist():
        assert abs(sum(r["cmi_prob"]) - 1) < 1e-4 and -1 <= r["sc_value"] <= 1
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["scored"] == len(ids)


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
    m = ["--model", str(model_dir)]
    return {
        "missing image": ([*m, "--image", str(tmp / "nope.jpg"), "--text", str(text)], "no such image"),
        "broken image": ([*m, "--image", str(REAL / "images" / "truncated.jpg"), "--text", str(text)], "cannot decode"),
        "empty text": ([*m, "--image", str(image), "--text", str(empty)], "empty"),
        "non-UTF-8 text": ([*m, "--image", str(image), "--text", str(latin1)], "not UTF-8"),
        "missing text file": ([*m, "--image", str(image), "--text", str(tmp / "nope.txt")], "no such text"),
        "other vocabulary": (["--model", str(other_vocab), "--image", str(image), "--text", str(text)], "vocabulary"),
        "missing model.pt": (["--model", str(no_model), "--image", str(image), "--text", str(text)], "model.pt"),
        "truncated model.pt": (["--model", str(broken_pt), "--image", str(image), "--text", str(text)], "corrupt"),
        "missing folder": (["--model", str(tmp / "none"), "--image", str(image), "--text", str(text)], "no such model"),
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
