"""MS COCO captions -> pairs, on the real COCO-MINI subset; the labelled subset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cmisc_model.errors import CmiscError
from cmisc_model.schemas import ANNOTATIONS, PAIRS, make_pair_id, read_table
from cmisc_model.sources.coco import clean_caption, coco_labelled_subset, coco_pairs


@pytest.fixture(scope="module")
def mini(realdata) -> Path:
    return realdata / "coco" / "coco-mini"


@pytest.fixture(scope="module")
def table(mini):
    return coco_pairs(mini / "captions_val2017.json", mini / "val2017")


def test_real_captions_one_row_each(mini, table):
    raw = json.loads((mini / "captions_val2017.json").read_text())
    assert table.num_rows == 395 == len(raw["annotations"])
    rows = table.to_pylist()
    assert len({r["doc_id"] for r in rows}) == 79
    ann = next(a for a in raw["annotations"] if a["id"] == 221865)
    r = next(r for r in rows if r["revision_id"] == 221865)
    assert r["pair_id"] == make_pair_id("coco", str(ann["image_id"]), "221865")
    assert r["doc_id"] == "205401" and r["source"] == "coco" and r["position"] == "lead"
    assert (
        r["caption"]
        == ann["caption"]
        == "A plane floating on top of a lake surrounded by mountains."
    )
    assert r["text_blocks"] == [{"titles": [], "sentences": [r["caption"]]}]
    assert r["image_title"] == "000000205401.jpg"
    assert r["image_url"].startswith("http://images.cocodataset.org/")
    img = next(i for i in raw["images"] if i["id"] == 205401)
    lic = next(x for x in raw["licenses"] if x["id"] == img["license"])
    assert r["licence"] == f"{lic['name']} ({lic['url']})"
    assert r["attribution"].startswith("http://farm") and r["dump_date"] == "2017/09/01"


def test_missing_images_keep_their_rows(mini, table):
    summary: dict = {}
    coco_pairs(mini / "captions_val2017.json", mini / "val2017", summary)
    assert summary["images_present"] == 3 and summary["images_missing"] == 76
    status = {}
    for r in table.to_pylist():
        status.setdefault(r["doc_id"], set()).add(r["image_status"])
    assert sum(1 for s in status.values() if s == {"missing"}) == 76
    assert {d for d, s in status.items() if s == {"ok"}} == {"205401", "126107", "165518"}
    ok = [r for r in table.to_pylist() if r["image_status"] == "ok"]
    assert len(ok) == 15 and all(Path(r["image_path"]).is_file() for r in ok)
    assert all(r["image_path"] is None for r in table.to_pylist() if r["image_status"] == "missing")


def test_caption_noise_cleaned(mini, table):
    raw = [
        a["caption"]
        for a in json.loads((mini / "captions_val2017.json").read_text())["annotations"]
    ]
    assert (
        any(c != c.strip() for c in raw)
        and any("\n" in c for c in raw)
        and any("  " in c for c in raw)
    )
    captions = table.column("caption").to_pylist()
    assert all(c == c.strip() and "\n" not in c and "  " not in c for c in captions)
    assert (
        "A bowl of food that looks like worms and some greens." in captions
    )  # had a trailing newline
    assert any(c.isupper() for c in captions)  # ALL-CAPS kept (the normaliser lower-cases)
    assert clean_caption("  a\tdog \n\n runs  ") == "a dog runs"


def test_subset_sizes_labels_and_determinism(table):
    pairs, labels = coco_labelled_subset(table, n_images=50, seed=3, require_image=False)
    assert pairs.num_rows == labels.num_rows == 50
    rows = pairs.to_pylist()
    assert len({r["doc_id"] for r in rows}) == 50
    per_image = {}
    for r in table.to_pylist():
        per_image.setdefault(r["doc_id"], {})[r["caption"]] = r["revision_id"]
    for r in rows:
        sents = r["text_blocks"][0]["sentences"]
        assert 1 <= len(sents) <= 4  # never all five
        ids = [per_image[r["doc_id"]][s] for s in sents]
        assert r["pair_id"] == make_pair_id(
            "coco", r["doc_id"], "subset:" + ",".join(map(str, ids))
        )
    assert {len(r["text_blocks"][0]["sentences"]) for r in rows} == {1, 2, 3, 4}
    lab = labels.to_pylist()
    assert all(
        (x["cmi"], x["sc"], x["source"], x["annotator"]) == (1.0, 1.0, "coco", "rule:coco-caption")
        for x in lab
    )
    assert [x["pair_id"] for x in lab] == [r["pair_id"] for r in rows]

    again, _ = coco_labelled_subset(table, n_images=50, seed=3, require_image=False)
    assert again.to_pylist() == rows
    other, _ = coco_labelled_subset(table, n_images=50, seed=4, require_image=False)
    assert other.column("pair_id").to_pylist() != pairs.column("pair_id").to_pylist()


def test_subset_takes_all_when_fewer(table):
    summary: dict = {}
    pairs, _ = coco_labelled_subset(table, n_images=100, seed=1, summary=summary)
    assert pairs.num_rows == 3  # only three image files are present
    assert all(r["image_status"] == "ok" for r in pairs.to_pylist())
    assert summary["subset_drawn"] == 3 and "took all" in summary["subset_note"]
    pairs, _ = coco_labelled_subset(table, n_images=100, seed=1, require_image=False)
    assert pairs.num_rows == 79


def test_bad_captions_file(tmp_path):
    bad = tmp_path / "captions.json"
    bad.write_text("{not json")
    with pytest.raises(CmiscError, match="captions.json"):
        coco_pairs(bad, tmp_path)
    bad.write_text(json.dumps({"images": [], "annotations": [{"id": 5, "image_id": 1}]}))
    with pytest.raises(CmiscError, match="annotation 5"):
        coco_pairs(bad, tmp_path)


def test_cli(mini, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("coco:\n  require_image: false\n  n_images: 10\n")
    out = tmp_path / "coco.parquet"
    cmd = [
        sys.executable,
        "-m",
        "cmisc_model",
        "coco-pairs",
        "--captions",
        str(mini / "captions_val2017.json"),
        "--images",
        str(mini / "val2017"),
        "--out",
        str(out),
        "--labelled-out",
        str(tmp_path / "lab.parquet"),
        "--annotations-out",
        str(tmp_path / "ann.parquet"),
        "--seed",
        "9",
        "--params",
        str(params),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "395 pairs, 79 images (3 present, 76 missing)" in run.stdout
    assert read_table(out, PAIRS).num_rows == 395
    assert read_table(tmp_path / "lab.parquet", PAIRS).num_rows == 10
    assert read_table(tmp_path / "ann.parquet", ANNOTATIONS).num_rows == 10
    summary = json.loads((tmp_path / "coco.summary.json").read_text())
    assert summary["subset_seed"] == 9 and summary["images_missing"] == 76


def test_sample_world_coco(request):
    """The sample world's COCO file and images (written by the sample world generator): all present."""
    pytest.importorskip("cmisc_model.sample_world.world")
    world = request.getfixturevalue("tiny_world")
    manifest = json.loads((world / "manifest.json").read_text())
    summary: dict = {}
    table = coco_pairs(
        world / manifest["files"]["coco_captions"],
        world / manifest["files"]["coco_images"],
        summary,
    )
    assert table.num_rows == manifest["counts"]["coco_captions"]
    assert (
        summary["images_missing"] == 0
        and summary["images_present"] == manifest["counts"]["coco_images"]
    )
    pairs, labels = coco_labelled_subset(table, n_images=100, seed=12345)
    assert pairs.num_rows == labels.num_rows == manifest["counts"]["coco_images"]


def test_null_blank_and_non_string_captions_are_rejected_and_never_drawn(mini, tmp_path):
    """The real file with four captions broken: no "None", "" or "{'x': 1}"
    sentence anywhere, each named in the summary, none in the labelled subset."""
    raw = json.loads((mini / "captions_val2017.json").read_text())
    broken = {a["id"]: v for a, v in zip(raw["annotations"][:4], [None, "   \n ", {"x": 1}, 7], strict=True)}
    for a in raw["annotations"]:
        if a["id"] in broken:
            a["caption"] = broken[a["id"]]
    path = tmp_path / "captions.json"
    path.write_text(json.dumps(raw))
    summary: dict = {}
    table = coco_pairs(path, mini / "val2017", summary)
    assert table.num_rows == 395 - 4
    sentences = [s for r in table.to_pylist() for b in r["text_blocks"] for s in b["sentences"]]
    assert not {"None", "", "{'x': 1}", "7"} & set(sentences)
    assert {r["id"]: r["reason"] for r in summary["captions_rejected"]} == dict(
        zip(broken, ["null", "blank", "not text (dict)", "not text (int)"], strict=True))
    pairs, _ = coco_labelled_subset(table, n_images=79, seed=1, require_image=False)
    drawn = {s for r in pairs.to_pylist() for s in r["text_blocks"][0]["sentences"]}
    assert drawn and not {"None", "", "{'x': 1}", "7"} & drawn
