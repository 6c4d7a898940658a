"""BBC News corpus (Feng & Lapata layout) -> pairs.

The fixture is synthetic (no real BBC file is public): a tiny tree in the
exact layout, ISO-8859-1 and UTF-8 articles, odd characters in names, and the
broken cases (missing image, caption without article, a JPEG saved as .html).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cmisc_model.schemas import PAIRS, make_pair_id, read_table
from cmisc_model.sources.bbc import BbcConfig, NotHtmlError, bbc_pairs, decode, parse_article

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake"

LATIN1_STORY = (
    "<html>\n<body>\n"
    "<p><b>Colour row over \u00a310m caf\u00e9 plan</b>\n<b>By Anna Smith</b></p>\n"
    "<p>The caf\u00e9 in the city centre costs \u00a310m. "
    "Mr. Brown said the colour was wrong.</p>\n"
    "<p>The World Trade Centre attacks were mentioned.</p>\n"
    "<b>Background</b>\n<b>More background</b>\n"
    "<p>The Labour Party objected.</p>\n"
    "</body>\n</html>\n"
)
UTF8_STORY = (
    "<html><body><b>\u201cQuoted\u201d headline</b>"
    "<p>She said \u2018no\u2019 to the organisation\u2019s plan.</p></body></html>"
)


def write_tree(root: Path) -> Path:
    train, test = root / "data_train", root / "data_test"
    train.mkdir(parents=True)
    test.mkdir(parents=True)
    (train / "4001.html").write_bytes(LATIN1_STORY.encode("iso-8859-1"))
    (train / "4001.jpg").write_bytes(JPEG)
    (train / "4001.txt").write_bytes("A caf\u00e9 in the centre\n".encode("iso-8859-1"))
    # windows-1252 curly quotes in an "ISO-8859-1" file (0x93/0x94)
    (train / "news!4002.html").write_bytes(
        b"<html><body><b>Vote</b><p>He said \x93yes\x94 to the \xa35 fee.</p></body></html>"
    )
    (train / "news!4002.jpg").write_bytes(JPEG)
    (train / "news!4002.txt").write_bytes(b"The vote  \n")
    (test / "5001.html").write_bytes(UTF8_STORY.encode("utf-8"))  # no .jpg
    (test / "5001.txt").write_bytes("Caption \u2019s".encode("utf-8"))
    (test / "5002.html").write_bytes(JPEG)  # a JPEG saved as .html
    (test / "5002.jpg").write_bytes(JPEG)
    (test / "5003.jpg").write_bytes(JPEG)  # no article
    (test / "5003.txt").write_bytes(b"orphan caption")
    (test / "5004.html").write_bytes(b"just some words, no markup at all\n")
    return root


@pytest.fixture()
def tree(tmp_path) -> Path:
    return write_tree(tmp_path / "bbc")


def by_doc(table):
    return {r["doc_id"]: r for r in table.to_pylist()}


def test_decode_iso_8859_1_windows_1252_and_utf8():
    assert decode("\u00a310 caf\u00e9".encode("iso-8859-1")) == ("\u00a310 caf\u00e9", "iso-8859-1")
    assert decode(b"\x93yes\x94 \xa3") == ("\u201cyes\u201d \u00a3", "windows-1252")
    assert decode("\u201cyes\u201d \u00a3".encode("utf-8")) == ("\u201cyes\u201d \u00a3", "utf-8")
    assert decode(b"plain") == ("plain", "ascii")


def test_pairs_from_tree(tree):
    table, summary = bbc_pairs(tree)
    rows = by_doc(table)
    assert set(rows) == {"data_train/4001", "data_train/news!4002", "data_test/5001"}
    r = rows["data_train/4001"]
    assert r["pair_id"] == make_pair_id("bbc", "data_train/4001", "4001.jpg")
    assert (r["source"], r["position"], r["section_path"]) == ("bbc", "lead", [])
    # the leading multi-line heading is kept (2017 dropped it), £ and é survive ISO-8859-1
    assert r["text_blocks"][0]["titles"] == [
        "Colour row over \u00a310m caf\u00e9 plan",
        "By Anna Smith",
    ]
    assert r["text_blocks"][0]["sentences"] == [
        "The caf\u00e9 in the city centre costs \u00a310m.",
        "Mr. Brown said the colour was wrong.",
        "The World Trade Centre attacks were mentioned.",
    ]
    # consecutive headings form one group
    assert r["text_blocks"][1] == {
        "titles": ["Background", "More background"],
        "sentences": ["The Labour Party objected."],
    }
    assert r["doc_title"] == "Colour row over \u00a310m caf\u00e9 plan"
    assert r["caption"] == "A caf\u00e9 in the centre"  # caption kept, raw British text kept
    assert r["image_status"] == "ok" and r["image_title"] == "4001.jpg"
    assert Path(r["image_path"]).read_bytes() == JPEG
    assert r["image_url"] == r["image_path"]  # no absolute path: the artifact is the same on every checkout

    assert rows["data_train/news!4002"]["text_blocks"][0]["sentences"] == [
        "He said \u201cyes\u201d to the \u00a35 fee."
    ]
    assert rows["data_train/news!4002"]["caption"] == "The vote"

    utf = rows["data_test/5001"]
    assert utf["text_blocks"][0]["titles"] == ["\u201cQuoted\u201d headline"]
    assert "\u2018no\u2019" in utf["text_blocks"][0]["sentences"][0]
    assert (utf["image_status"], utf["image_path"], utf["image_title"]) == (
        "missing",
        None,
        "5001.jpg",
    )

    assert summary["encodings"] == {"iso-8859-1": 1, "windows-1252": 1, "utf-8": 1}
    assert summary["missing_image"] == ["data_test/5001"]
    assert sorted(summary["without_html"]) == ["data_test/5003.jpg", "data_test/5003.txt"]
    assert len(summary["not_html"]) == 2
    assert any("5002.html" in m and "JPEG" in m for m in summary["not_html"])
    assert any("5004.html" in m and "no <html>" in m for m in summary["not_html"])
    assert summary["stories"] == 5 and summary["pairs"] == 3


def test_not_html_is_named():
    with pytest.raises(NotHtmlError, match=r"story\.html: not HTML \(a JPEG image\)"):
        parse_article(JPEG, "story.html")
    with pytest.raises(NotHtmlError, match="NUL"):
        parse_article(b"<p>a\x00b</p>", "x.html")


def test_unexpected_tags_are_read_and_counted():
    blocks, _, unexpected = parse_article(
        b"<html><body><p>One.</p><div>Two. Three.</div>Loose text.</body></html>"
    )
    assert blocks == [{"titles": [], "sentences": ["One.", "Two.", "Three.", "Loose text."]}]
    assert unexpected == {"div": 1}
    # a wrapper around the flat body is read like the body; other tags as paragraphs
    blocks, _, unexpected = parse_article(
        b"<html><body><div><b>H</b><p>One.</p><p><b>A</b><br><b>B</b></p>"
        b"<p>Two.</p></div><span>Three.</span></body></html>"
    )
    assert blocks == [
        {"titles": ["H"], "sentences": ["One."]},
        {"titles": ["A", "B"], "sentences": ["Two.", "Three."]},
    ]
    assert unexpected == {"div": 1, "span": 1}


def test_spelling_report(tree):
    _, summary = bbc_pairs(tree)
    sp = summary["spelling"]
    assert sp["enabled"] is True
    # colour (title), centre, colour (body), organisation; the two names stay
    assert sp["replacements"] == 4
    assert sp["top_replaced"] == {"colour": 2, "centre": 1, "organisation": 1}
    assert sp["top_protected"] == {"centre": 1, "labour": 1}
    assert (
        sp["british_types_before"] == 4 and sp["british_types_after"] == 2
    )  # centre, labour of the names
    assert (
        sp["types_before"] > 20 and sp["types_after"] == sp["types_before"] + 1
    )  # +color +organization +center, -colour -organisation


def test_missing_corpus_folder_is_an_error(tmp_path):
    from cmisc_model.errors import CmiscError

    with pytest.raises(CmiscError, match="no BBC corpus folder"):
        bbc_pairs(tmp_path)
    (tmp_path / "data_test").mkdir()
    table, summary = bbc_pairs(tmp_path, BbcConfig(subdirs=["data_test"]))
    assert table.num_rows == 0 and summary["stories"] == 0


def test_cli_writes_pairs_and_summary(tree, tmp_path):
    out = tmp_path / "out" / "bbc_pairs.parquet"
    cmd = [sys.executable, "-m", "cmisc_model", "bbc-pairs", "--root", str(tree), "--out", str(out),
           "--params", str(tmp_path / "empty.yaml")]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "empty.yaml" in run.stderr
    (tmp_path / "empty.yaml").write_text("{}\n")
    run = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "3 pairs from 5 stories" in run.stdout
    assert "5002.html: not HTML" in run.stdout
    assert "4 replacements" in run.stdout
    table = read_table(out, PAIRS)
    assert table.num_rows == 3
    summary = json.loads((tmp_path / "out" / "bbc_pairs.summary.json").read_text())
    assert summary["spelling"]["replacements"] == 4 and summary["pairs"] == 3


def test_sample_world_bbc(request):
    """The sample world's BBC folder (ISO-8859-1 articles, written by the sample world generator)."""
    pytest.importorskip("cmisc_model.sample_world.world")
    tiny_world = request.getfixturevalue("tiny_world")
    manifest = json.loads((tiny_world / "manifest.json").read_text())
    table, summary = bbc_pairs(tiny_world / "bbc")
    assert table.num_rows == summary["stories"] == manifest["counts"]["bbc_stories"]
    assert not (summary["not_html"] or summary["missing_image"] or summary["missing_caption"])
    assert set(summary["encodings"]) <= {"iso-8859-1", "ascii"}
    expected_ids = {
        json.loads(line)["pair_id"]
        for line in (tiny_world / "annotations.jsonl").read_text().splitlines()
        if json.loads(line)["source"] == "bbc"
    }
    assert expected_ids and expected_ids <= set(table.column("pair_id").to_pylist())
    rows = table.to_pylist()
    assert all(r["image_status"] == "ok" and Path(r["image_path"]).is_file() for r in rows)
    assert all(r["text_blocks"][0]["titles"] for r in rows)  # every story starts with its headline
    assert any(len(r["text_blocks"][0]["titles"]) > 1 for r in rows)  # a multi-line heading kept
    assert summary["spelling"]["replacements"] > 0


def test_odd_file_names(tmp_path):
    train = tmp_path / "data_train"
    train.mkdir()
    story = b"<html><body><b>Head</b><p>Body text.</p></body></html>"
    (train / "caf\u00e9 story!1.html").write_bytes(story)  # UTF-8 name with space and "!"
    (train / "caf\u00e9 story!1.jpg").write_bytes(JPEG)
    (train / "caf\u00e9 story!1.txt").write_bytes(b"cap")
    with open(os.path.join(os.fsencode(train), b"bad\xe9name.html"), "wb") as f:  # not UTF-8
        f.write(story)
    table, summary = bbc_pairs(tmp_path)
    (row,) = table.to_pylist()
    assert row["doc_id"] == "data_train/caf\u00e9 story!1"
    assert row["image_status"] == "ok" and Path(row["image_path"]).is_file()
    assert summary["undecodable_names"] == ["data_train/b'bad\\xe9name'"]
