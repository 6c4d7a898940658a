"""The sample world: determinism, real on-disk formats, and the label rules."""

from __future__ import annotations

import bz2
import hashlib
import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import mwparserfromhell
import pytest
from bs4 import BeautifulSoup
from PIL import Image

from cmisc_model import cli
from cmisc_model.config import ParamsError
from cmisc_model.errors import CmiscError
from cmisc_model.sample_world.scenes import Scene, SceneObject, label_sentences, parse_claim
from cmisc_model.sample_world.world import TABLES, SampleConfig, allocate_cells, generate
from cmisc_model.schemas import ANNOTATIONS, from_rows, make_pair_id, normalise_file_title
from cmisc_model.text.sentences import split_sentences

DUMP = "simplewiki/simplewiki-sample-pages-articles.xml.bz2"


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- determinism, bad input


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, seed=3, size="tiny", cfg=SampleConfig())
    generate(b, seed=3, size="tiny", cfg=SampleConfig())
    generate(c, seed=4, size="tiny", cfg=SampleConfig())
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert len(fa) > 50
    assert fa.keys() == fb.keys()
    assert [k for k in fa if fa[k] != fb[k]] == []
    for name in (DUMP, "coco/annotations/captions_train2017.json", "annotations.jsonl"):
        assert fa[name] != fc[name], name
    jpgs = [k for k in fa if k.endswith(".jpg") and k in fc]
    assert jpgs and any(fa[k] != fc[k] for k in jpgs)


def test_existing_folder_needs_force(tmp_path):
    out = tmp_path / "world"
    generate(out, seed=1, size="tiny", cfg=SampleConfig())
    with pytest.raises(CmiscError, match=re.escape(str(out)) + ".*--force"):
        generate(out, seed=2, size="tiny", cfg=SampleConfig())
    m = generate(out, seed=2, size="tiny", cfg=SampleConfig(), force=True)
    assert json.loads((out / "manifest.json").read_text())["seed"] == m["seed"] == 2
    # --force never deletes a folder that is not a sample world.
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(CmiscError, match="no manifest.json"):
        generate(other, seed=1, size="tiny", cfg=SampleConfig(), force=True)
    assert (other / "thesis.tex").read_text() == "keep me"


def test_bad_size_and_bad_params_name_the_key(tmp_path):
    with pytest.raises(ParamsError, match=r"^sample\.size: 'huge'"):
        generate(tmp_path / "x", seed=1, size="huge", cfg=SampleConfig())
    cfg = SampleConfig()
    cfg.sizes["tiny"]["bbc_stories"] = -3
    with pytest.raises(ParamsError, match=r"^sample\.sizes\.tiny\.bbc_stories: -3"):
        generate(tmp_path / "x", seed=1, size="tiny", cfg=cfg)
    with pytest.raises(ParamsError, match=r"^sample\.image_px"):
        generate(tmp_path / "x", seed=1, size="tiny", cfg=SampleConfig(image_px=4))
    assert not (tmp_path / "x").exists()


def test_cli_one_line_errors_and_params(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("base: {seed: 5}\nsample: {size: tiny, out: %s}\n" % (tmp_path / "w"))
    assert cli.main(["sample", "--params", str(params)]) == 0
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["seed"] == 5
    assert cli.main(["sample", "--params", str(params), "--seed", "6"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--force" in err
    assert cli.main(["sample", "--params", str(params), "--size", "huge", "--force"]) == 2
    assert "sample.size" in capsys.readouterr().err


# --------------------------------------------------------------------------- formats


def _pages(world: Path) -> tuple[ET.Element, list[dict]]:
    root = ET.fromstring(bz2.decompress((world / DUMP).read_bytes()))
    ns = {"m": "http://www.mediawiki.org/xml/export-0.10/"}
    pages = []
    for p in root.findall("m:page", ns):
        redirect = p.find("m:redirect", ns)
        text = p.find("m:revision/m:text", ns)
        pages.append(
            {
                "title": p.findtext("m:title", namespaces=ns),
                "ns": int(p.findtext("m:ns", namespaces=ns)),
                "id": int(p.findtext("m:id", namespaces=ns)),
                "rev": int(p.findtext("m:revision/m:id", namespaces=ns)),
                "redirect": None if redirect is None else redirect.get("title"),
                "text": text.text,
                "bytes": int(text.get("bytes")),
            }
        )
    return root, pages


def test_dump_parses_as_mediawiki_export(tiny_world):
    root, pages = _pages(tiny_world)
    assert (
        root.tag == "{http://www.mediawiki.org/xml/export-0.10/}mediawiki"
        and root.get("version") == "0.10"
    )
    m = "{http://www.mediawiki.org/xml/export-0.10/}"
    site = root.find(m + "siteinfo")
    assert site.findtext(m + "dbname") == "simplewiki"
    spaces = {int(n.get("key")): (n.text or "") for n in site.iter(m + "namespace")}
    assert spaces[0] == "" and spaces[4] == "Wikipedia" and spaces[6] == "File"
    assert len({p["id"] for p in pages}) == len(pages) and len({p["rev"] for p in pages}) == len(
        pages
    )
    redirects = [p for p in pages if p["redirect"]]
    assert len(redirects) == 1 and redirects[0]["text"].startswith("#REDIRECT [[")
    assert redirects[0]["redirect"] in {
        p["title"] for p in pages if p["ns"] == 0 and not p["redirect"]
    }
    assert {4, 6, 10} <= {p["ns"] for p in pages}
    for p in pages:
        assert p["bytes"] == len(p["text"].encode("utf-8"))
    articles = "\n".join(p["text"] for p in pages if p["ns"] == 0)
    for needle in (
        "<gallery>",
        "| image = ",
        '{| class="wikitable"',
        "<ref>",
        "{{cite book",
        "[[Image:",
        "=== ",
    ):
        assert needle in articles, needle
    assert re.search(
        r"\[\[File:[^\]|]+\|thumb\|[^\]]*\[\[[^\]]+\]\]", articles
    )  # a caption with a nested link


def test_wiki_images_live_at_upload_paths(tiny_world):
    _, pages = _pages(tiny_world)
    names = set()
    for p in pages:
        if p["ns"] == 0:
            names |= set(re.findall(r"\[\[(?:File|Image):([^|\]]+)", p["text"]))
            names |= set(re.findall(r"\| image = (.+)", p["text"]))
            names |= set(re.findall(r"^(?:File:)?([^|\n<]+\.jpg)\|", p["text"], re.MULTILINE))
    assert any(n[0].islower() for n in names) and any(not n.isascii() for n in names)
    for name in names:
        key = normalise_file_title(name)
        h = hashlib.md5(key.encode("utf-8")).hexdigest()
        path = tiny_world / "simplewiki/images/commons" / h[0] / h[:2] / key
        assert path.exists(), name
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (160, 160)


def test_coco_file_has_the_official_schema(tiny_world):
    data = json.loads((tiny_world / "coco/annotations/captions_train2017.json").read_text())
    assert set(data) == {"info", "licenses", "images", "annotations"}
    assert {"description", "url", "version", "year", "contributor", "date_created"} <= set(
        data["info"]
    )
    assert [lic["id"] for lic in data["licenses"]] == list(range(1, 9))
    for im in data["images"]:
        assert set(im) == {
            "license",
            "file_name",
            "coco_url",
            "height",
            "width",
            "date_captured",
            "flickr_url",
            "id",
        }
        assert im["file_name"] == f"{im['id']:012d}.jpg"
        assert (tiny_world / "coco/train2017" / im["file_name"]).exists()
    per_image: dict[int, int] = {}
    for a in data["annotations"]:
        assert set(a) == {"image_id", "id", "caption"}
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
    assert set(per_image.values()) == {5} and len(per_image) == len(data["images"]) == 12
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])


def test_bbc_stories_are_iso_8859_1_flat_html(tiny_world):
    stems = {}
    for sub in ("data_train", "data_test"):
        for p in (tiny_world / "bbc" / sub).iterdir():
            stems.setdefault((sub, p.stem), set()).add(p.suffix)
    assert {sub for sub, _ in stems} == {"data_train", "data_test"}
    assert all(v == {".html", ".jpg", ".txt"} for v in stems.values())
    raw = b"".join((tiny_world / "bbc" / sub / f"{stem}.html").read_bytes() for sub, stem in stems)
    text = raw.decode("iso-8859-1")
    assert "£" in text and "é" in text
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # really Latin-1, not UTF-8
    for word in ("colour", "centre", "organise", "grey", "programme"):
        assert word in text, word
    multi_line_heading = False
    for sub, stem in stems:
        soup = BeautifulSoup(
            (tiny_world / "bbc" / sub / f"{stem}.html").read_bytes().decode("iso-8859-1"),
            "html.parser",
        )
        children = [c for c in soup.body.children if getattr(c, "name", None)]
        assert {c.name for c in children} <= {"b", "p"}
        first = children[0]
        if (
            first.name == "p"
            and [c.name for c in first.children if getattr(c, "name", None)]
            == ["b"] * len(first.find_all("b"))
            and len(first.find_all("b")) > 1
        ):
            multi_line_heading = True
        caption = (tiny_world / "bbc" / sub / f"{stem}.txt").read_text("utf-8")
        assert caption.count("\n") == 1 and not caption.strip().endswith(".")
    assert multi_line_heading


# --------------------------------------------------------------------------- the labels follow from the text


def _scenes(world: Path) -> dict[str, Scene]:
    rows = [json.loads(line) for line in (world / "scenes.jsonl").read_text().splitlines()]
    return {r["pair_id"]: Scene.from_json(r["scene"]) for r in rows if r["pair_id"]}


def _plain(wikitext: str) -> list[str]:
    """Sentences of a wikitext chunk, with the default pairing's exclusions."""
    code = mwparserfromhell.parse(wikitext)
    for node in code.filter_wikilinks(recursive=False):
        if str(node.title).split(":")[0] in ("File", "Image", "Category"):
            code.remove(node)
    for node in code.filter_tags(recursive=False) + code.filter_templates(recursive=False):
        code.remove(node)
    text = "\n".join(line for line in code.strip_code().splitlines() if not line.startswith("*"))
    return split_sentences(text)


def test_annotations_follow_from_the_texts_the_pairs_carry(tiny_world):
    rows = [
        json.loads(line) for line in (tiny_world / "annotations.jsonl").read_text().splitlines()
    ]
    from_rows(rows, ANNOTATIONS)
    labels = {r["pair_id"]: (r["cmi"], r["sc"]) for r in rows}
    scenes = _scenes(tiny_world)
    checked = {"simplewiki": 0, "bbc": 0}
    _, pages = _pages(tiny_world)
    for p in pages:
        if p["ns"] != 0 or p["redirect"]:
            continue
        chunks = re.split(r"^(=+) *(.*?) *\1 *$", p["text"], flags=re.MULTILINE)
        bodies = [chunks[0]] + chunks[3::3]
        everything = [s for b in bodies for s in _plain(b)]
        for k, body in enumerate(bodies):
            thumbs = re.findall(r"\[\[(?:File|Image):([^|\]]+)\|thumb", body)
            if not thumbs:
                continue
            pid = make_pair_id("simplewiki", str(p["id"]), normalise_file_title(thumbs[0]))
            if pid in labels:
                got = label_sentences(scenes[pid], everything if k == 0 else _plain(body))
                assert (got.cmi, got.sc) == labels[pid], (p["title"], k)
                checked["simplewiki"] += 1
    for sub in ("data_train", "data_test"):
        for html in (tiny_world / "bbc" / sub).glob("*.html"):
            pid = make_pair_id("bbc", f"{sub}/{html.stem}", f"{html.stem}.jpg")
            if pid in labels:
                soup = BeautifulSoup(html.read_bytes().decode("iso-8859-1"), "html.parser")
                sentences = [
                    s
                    for para in soup.body.find_all("p", recursive=False)
                    if not para.find("b")
                    for s in split_sentences(para.get_text())
                ]
                got = label_sentences(scenes[pid], sentences)
                assert (got.cmi, got.sc) == labels[pid], html.name
                checked["bbc"] += 1
    assert checked["simplewiki"] + checked["bbc"] == len(rows) == 20
    assert checked["simplewiki"] > 0 and checked["bbc"] > 0


def test_labelled_distribution_is_skewed_like_the_paper():
    # 726 Wikipedia + BBC labels, plus COCO's 100 at (CMI 1, SC 1), give Tables 1 and 2.
    import numpy as np

    rng = np.random.default_rng(0)
    cells = allocate_cells(TABLES["simplewiki"], 521, rng) + allocate_cells(TABLES["bbc"], 205, rng)
    cells += [(1.0, 1.0)] * 100
    assert [sum(c[0] == v for c in cells) for v in (0, 0.25, 0.5, 0.75, 1)] == [
        44,
        157,
        466,
        52,
        107,
    ]
    assert [sum(c[1] == v for c in cells) for v in (-1, -0.5, 0, 0.5, 1)] == [7, 31, 109, 138, 541]
    mean = lambda src, n: sum(c[1] for c in allocate_cells(TABLES[src], n, rng)) / n
    assert abs(mean("bbc", 205) - 0.15) < 0.03 and abs(mean("simplewiki", 521) - 0.88) < 0.03


# --------------------------------------------------------------------------- the label rules, one test each

SCENE = Scene(
    (
        SceneObject("circle", "red", "large", "upper left", 26),  # salient
        SceneObject("square", "blue", "small", "lower right", 14),
    ),
    (230, 230, 230),
    "dots",
)
BIG_RIGHT = "A large red circle is shown in the upper left."
BIG_WRONG = "A large green circle is shown in the upper left."
SMALL_RIGHT = "In the lower right, there is a small blue square."
SMALL_WRONG = "In the lower right, there is a small blue star."
ABSENT = "A small yellow star could be seen at the top of the picture."
FILLER = "It was made by Anna Berg in 1921."


def test_parse_claim_reads_mentions_and_ignores_filler():
    c = parse_claim("A large gray hexagon is shown in the center.")
    assert (c.size, c.colour, c.shape, c.position) == ("large", "grey", "hexagon", "centre")
    assert parse_claim(FILLER) is None
    assert parse_claim("The Labour Party met in the city centre on Monday.") is None


def test_cmi_rule_no_shared_concept_gives_zero():
    # Filler and objects the image does not show: CMI 0 and SC 0.
    got = label_sentences(SCENE, [FILLER, ABSENT, FILLER])
    assert (got.cmi, got.sc) == (0.0, 0.0)


def test_cmi_rule_caption_like_text_gives_one():
    assert label_sentences(SCENE, [BIG_RIGHT, SMALL_RIGHT]).cmi == 1.0
    # One filler sentence is no longer caption-like.
    assert label_sentences(SCENE, [BIG_RIGHT, SMALL_RIGHT, FILLER]).cmi == 0.75


def test_cmi_rule_partial_sharing_by_coverage_and_focus():
    assert (
        label_sentences(SCENE, [SMALL_RIGHT, FILLER, FILLER]).cmi == 0.25
    )  # part of scene, little text
    assert (
        label_sentences(SCENE, [BIG_RIGHT, SMALL_RIGHT] + [FILLER] * 3).cmi == 0.5
    )  # whole scene, little text
    assert label_sentences(SCENE, [BIG_RIGHT]).cmi == 0.5  # part of scene, all text
    assert label_sentences(SCENE, [BIG_RIGHT, SMALL_RIGHT, FILLER, ABSENT]).cmi == 0.75


def test_sc_rule_contradiction_on_the_salient_object_is_negative():
    assert label_sentences(SCENE, [BIG_WRONG, FILLER]).sc == -1.0
    assert label_sentences(SCENE, [BIG_WRONG, SMALL_WRONG]).sc == -1.0
    assert label_sentences(SCENE, [BIG_WRONG, SMALL_RIGHT, FILLER]).sc == -0.5


def test_sc_rule_salient_object_described_correctly_is_positive():
    assert label_sentences(SCENE, [BIG_RIGHT] + [FILLER] * 6).sc == 1.0
    assert label_sentences(SCENE, [BIG_RIGHT, SMALL_WRONG]).sc == 0.5


def test_sc_rule_details_only():
    assert label_sentences(SCENE, [SMALL_RIGHT, FILLER]).sc == 0.5
    assert label_sentences(SCENE, [SMALL_WRONG, FILLER]).sc == 0.0
    assert (
        label_sentences(SCENE, [SMALL_WRONG, FILLER, FILLER]).cmi == 0.25
    )  # shared concept, no agreement


def test_params_section_equals_the_dataclass_defaults():
    from cmisc_model.config import load_section
    from tests.conftest import REPO

    assert load_section(SampleConfig, "sample", REPO / "params.yaml") == SampleConfig()
