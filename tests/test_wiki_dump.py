"""The dump reader and `cmisc wiki-pairs` against real Simple English Wikipedia files
(and variants of them made in tmp_path: UTF-16, plain, schema 0.11, no siteinfo)."""

from __future__ import annotations

import bz2
import json
import re

import pytest

from cmisc_model.cli import main
from cmisc_model.errors import CmiscError
from cmisc_model.schemas import PAIRS, file_metadata, read_table
from cmisc_model.sources import wikitext
from cmisc_model.sources.wiki_dump import (
    EXIT_INCOMPLETE,
    DumpTruncatedError,
    dump_to_pairs,
    iter_page_shards,
    iter_pages,
    pages_to_pairs,
    read_siteinfo,
)
from tests.conftest import REALDATA as _REAL

REALDATA = _REAL / "wiki"
DUMP_2019 = REALDATA / "simplewiki-2019-7pages.xml.bz2"
TRUNCATED = REALDATA / "simplewiki-2023-truncated.xml"
ARTICLES = ["April", "August", "Art", "A", "Air", "Autonomous communities of Spain"]


@pytest.fixture(scope="module")
def xml_2019() -> str:
    return bz2.open(DUMP_2019).read().decode("utf-8")


def _rows(path):
    return read_table(path, PAIRS).to_pylist()


# --------------------------------------------------------------------------- reader


def test_reader_real_2019_dump():
    pages = list(iter_pages(DUMP_2019))
    assert [p.title for p in pages] == ARTICLES[:5] + ["Wikipedia:Administrators", ARTICLES[5]]
    admin = pages[5]
    assert admin.ns == 4 and admin.page_id == 11
    april = pages[0]
    assert (april.page_id, april.revision_id, april.timestamp) == (
        1,
        6516364,
        "2019-04-26T03:40:24Z",
    )
    assert april.text.startswith("{{monththisyear|4}}\n'''April'''")
    assert "&quot;" not in pages[2].text and '"art"' in pages[2].text  # XML entities decoded
    assert not any(p.redirect for p in pages)

    site = read_siteinfo(DUMP_2019)
    assert site.dbname == "simplewiki" and site.schema_version == "0.10"
    assert site.base_url == "https://simple.wikipedia.org/wiki/"
    assert site.namespaces[6] == "File" and site.file_namespaces == ("File", "Image")


def test_variants_utf16_plain_011_no_siteinfo_read_the_same(tmp_path, xml_2019):
    expected = [(p.title, p.page_id, p.revision_id, p.text) for p in iter_pages(DUMP_2019)]

    plain = tmp_path / "plain.xml"
    plain.write_text(xml_2019, encoding="utf-8")
    utf16 = tmp_path / "utf16.xml.bz2"  # Python's "utf-16" writes a BOM
    utf16.write_bytes(bz2.compress(xml_2019.encode("utf-16")))
    assert utf16.read_bytes()[:3] == b"BZh" and bz2.decompress(utf16.read_bytes())[:2] in (
        b"\xff\xfe",
        b"\xfe\xff",
    )
    v011 = tmp_path / "v011.xml"
    v011.write_text(
        xml_2019.replace("export-0.10", "export-0.11")
        .replace('version="0.10"', 'version="0.11"')
        .replace("<model>wikitext</model>", "<origin>1</origin><model>wikitext</model>")
        .replace('<text xml:space="preserve">', '<text bytes="1" sha1="x" xml:space="preserve">'),
        encoding="utf-8",
    )
    no_site = tmp_path / "nosite.xml"
    no_site.write_text(
        re.sub(r"<siteinfo>.*?</siteinfo>", "", xml_2019, flags=re.DOTALL), encoding="utf-8"
    )

    for path in (plain, utf16, v011, no_site):
        got = [(p.title, p.page_id, p.revision_id, p.text) for p in iter_pages(path)]
        assert got == expected, path.name
    assert read_siteinfo(v011).schema_version == "0.11"
    assert read_siteinfo(no_site).dbname is None
    assert read_siteinfo(no_site).file_namespaces == ("File", "Image")
    assert read_siteinfo(utf16).dbname == "simplewiki"

    # The same pairs from every variant.
    dump_to_pairs(DUMP_2019, tmp_path / "ref.parquet")
    ref = _rows(tmp_path / "ref.parquet")
    for path in (plain, utf16, v011, no_site):
        dump_to_pairs(path, tmp_path / f"{path.stem}.parquet")
        assert _rows(tmp_path / f"{path.stem}.parquet") == ref, path.name


def test_truncated_dump_names_last_complete_page():
    seen = []
    with pytest.raises(DumpTruncatedError) as err:
        for page in iter_pages(TRUNCATED):
            seen.append(page.title)
    assert len(seen) == 7  # the seven complete pages are still delivered
    message = str(err.value)
    assert TRUNCATED.name in message
    assert "'Autonomous communities of Spain' (id 12)" in message and "ends early" in message
    assert err.value.last_id == 12
    assert isinstance(err.value, CmiscError)


def test_malformed_dump_names_last_complete_page(tmp_path, xml_2019):
    broken = tmp_path / "broken.xml"
    i = xml_2019.index("<title>Art</title>")
    broken.write_text(xml_2019[:i] + "<title>Art</titel>" + xml_2019[i + 18 :], encoding="utf-8")
    with pytest.raises(DumpTruncatedError, match=r"is malformed .* 'August' \(id 2\)"):
        list(iter_pages(broken))


def test_not_a_dump(tmp_path):
    other = tmp_path / "other.xml"
    other.write_text("<html><body/></html>")
    with pytest.raises(CmiscError, match="not a MediaWiki XML export"):
        list(iter_pages(other))
    with pytest.raises(FileNotFoundError, match="nope.xml"):
        list(iter_pages(tmp_path / "nope.xml"))


def test_shards_hold_articles_only():
    shards = list(iter_page_shards(DUMP_2019, shard_size=4))
    assert [[p.title for p in s] for s in shards] == [ARTICLES[:4], ARTICLES[4:]]
    rows, skipped = pages_to_pairs(shards[0], site=read_siteinfo(DUMP_2019))
    assert skipped == [] and {r["doc_title"] for r in rows} == {"April", "August", "Art", "A"}


# --------------------------------------------------------------------------- dump -> pairs


def test_dump_to_pairs_real_2019(tmp_path):
    out = tmp_path / "pairs.parquet"
    summary = dump_to_pairs(DUMP_2019, out)
    assert summary["pages_seen"] == 7
    assert summary["articles"] == 6
    assert summary["non_articles_skipped"] == 1 and summary["redirects_skipped"] == 0
    assert summary["incomplete"] is False and summary["skipped_pages"] == []
    rows = _rows(out)
    assert summary["pairs"] == len(rows) == 9
    # The namespace-4 page has a captioned thumbnail, but it is not an article.
    assert "11" not in {r["doc_id"] for r in rows}
    assert summary["pages_with_pairs"] == len({r["doc_id"] for r in rows}) == 5
    april = [r for r in rows if r["doc_title"] == "April"]
    assert [(r["image_title"], r["section_path"]) for r in april] == [
        ("File:Colorful spring garden.jpg", ["The Month"])
    ]
    assert (
        april[0]["revision_id"] == 6516364
        and april[0]["revision_timestamp"] == "2019-04-26T03:40:24Z"
    )
    assert file_metadata(out).get("cmisc.incomplete") is None


def test_workers_give_the_same_file(tmp_path):
    one = dump_to_pairs(DUMP_2019, tmp_path / "one.parquet", batch_pages=1)
    two = dump_to_pairs(DUMP_2019, tmp_path / "two.parquet", workers=2, batch_pages=1)
    assert one == {**two, "dump": one["dump"]}
    assert _rows(tmp_path / "one.parquet") == _rows(tmp_path / "two.parquet")


def test_truncated_dump_still_writes_complete_pages(tmp_path):
    out = tmp_path / "pairs.parquet"
    summary = dump_to_pairs(TRUNCATED, out)
    assert summary["incomplete"] is True
    assert summary["pages_seen"] == 7 and summary["articles"] == 6
    assert "'Autonomous communities of Spain' (id 12)" in summary["error"]
    rows = _rows(out)
    assert len(rows) == summary["pairs"] > 0
    assert {r["doc_id"] for r in rows} <= {"1", "2", "6", "8", "9", "12"}
    assert all(r["revision_timestamp"].startswith("2023") for r in rows)
    meta = file_metadata(out)
    assert meta["cmisc.incomplete"] == "true"
    assert "Autonomous communities of Spain" in meta["cmisc.incomplete_reason"]


def test_malformed_page_is_skipped_not_fatal(tmp_path, monkeypatch):
    real = wikitext.page_pairs

    def flaky(title, *args, **kwargs):
        if title == "Art":
            raise wikitext.WikitextError(f"page {title!r}: unbalanced markup")
        return real(title, *args, **kwargs)

    monkeypatch.setattr(wikitext, "page_pairs", flaky)
    summary = dump_to_pairs(DUMP_2019, tmp_path / "pairs.parquet")
    assert summary["skipped_pages"] == [
        {"title": "Art", "page_id": 6, "reason": "page 'Art': unbalanced markup"}
    ]
    rows = _rows(tmp_path / "pairs.parquet")
    assert "Art" not in {r["doc_title"] for r in rows} and len(rows) == 9 - 4


def test_redirects_are_skipped(tmp_path, xml_2019):
    redirect = (
        '<page><title>Aprill</title><ns>0</ns><id>99</id><redirect title="April" />'
        "<revision><id>5</id><timestamp>2019-01-01T00:00:00Z</timestamp>"
        '<text xml:space="preserve">#REDIRECT [[April]] [[File:X.jpg|thumb|x]]</text></revision></page>'
    )
    path = tmp_path / "with-redirect.xml"
    path.write_text(xml_2019.replace("</siteinfo>", "</siteinfo>" + redirect), encoding="utf-8")
    summary = dump_to_pairs(path, tmp_path / "pairs.parquet")
    assert summary["redirects_skipped"] == 1 and summary["articles"] == 6 and summary["pairs"] == 9


# --------------------------------------------------------------------------- CLI


def test_cli_wiki_pairs(tmp_path, capsys):
    out = tmp_path / "pairs.parquet"
    code = main(
        [
            "wiki-pairs",
            "--dump",
            str(DUMP_2019),
            "--out",
            str(out),
            "--no-progress",
            "--dump-date",
            "2019-08-20",
            "--summary",
            str(tmp_path / "s.json"),
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["pairs"] == 9 and printed["articles"] == 6
    assert json.loads((tmp_path / "s.json").read_text()) == printed
    assert {r["dump_date"] for r in _rows(out)} == {"2019-08-20"}


def test_cli_truncated_exits_3_with_one_line_error(tmp_path, capsys):
    out = tmp_path / "pairs.parquet"
    code = main(
        [
            "wiki-pairs",
            "--dump",
            str(TRUNCATED),
            "--out",
            str(out),
            "--workers",
            "2",
            "--no-progress",
        ]
    )
    assert code == EXIT_INCOMPLETE == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cmisc wiki-pairs: error:")
    assert "Autonomous communities of Spain" in err[0]
    assert file_metadata(out)["cmisc.incomplete"] == "true"


def test_cli_missing_dump_is_exit_2(tmp_path, capsys):
    code = main(
        [
            "wiki-pairs",
            "--dump",
            str(tmp_path / "none.xml.bz2"),
            "--out",
            str(tmp_path / "p.parquet"),
        ]
    )
    assert code == 2
    assert "none.xml.bz2" in capsys.readouterr().err
    assert not (tmp_path / "p.parquet").exists()


def test_truncated_multistream_bz2_keeps_complete_streams(tmp_path, xml_2019):
    # Like a real pages-articles-multistream dump: one bz2 stream per page.
    head, rest = xml_2019.split("<page>", 1)
    pages = ["<page>" + p for p in rest.split("<page>")]
    streams = [bz2.compress(head.encode())] + [bz2.compress(p.encode()) for p in pages]
    whole = tmp_path / "multi.xml.bz2"
    whole.write_bytes(b"".join(streams))
    assert next(p.title for p in iter_pages(whole)) == "April"
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(b"".join(streams[:5]) + streams[5][: len(streams[5]) // 2])  # inside page 5
    out = tmp_path / "pairs.parquet"
    summary = dump_to_pairs(cut, out)
    assert summary["incomplete"] is True and "ends early" in summary["error"]
    assert "'A' (id 8)" in summary["error"]
    assert summary["pages_seen"] == 4
    assert {r["doc_title"] for r in _rows(out)} == {"April", "August", "Art", "A"}
    assert file_metadata(out)["cmisc.incomplete"] == "true"


# --------------------------------------------------------------------------- empty inputs, siteinfo, summaries, workers


def test_zero_page_inputs_exit_2_and_keep_the_previous_output(tmp_path, capsys):
    """Anything that is not a dump (text, empty files, gzipped JSON, a zip
    named .bz2, a directory) is bad input: exit 2, the previous --out kept."""
    import gzip
    import zipfile

    out = tmp_path / "pairs.parquet"
    assert main(["wiki-pairs", "--dump", str(DUMP_2019), "--out", str(out), "--no-progress"]) == 0
    before = out.read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.txt").write_text("just some text, not XML at all\n")
    (bad / "empty.xml").write_bytes(b"")
    (bad / "empty.xml.bz2").write_bytes(b"")
    (bad / "empty2.xml.bz2").write_bytes(bz2.compress(b""))
    (bad / "empty.xml.gz").write_bytes(gzip.compress(b""))
    (bad / "data.xml.gz").write_bytes(gzip.compress(json.dumps({"pages": [1, 2]}).encode()))
    with zipfile.ZipFile(bad / "zipped.xml.bz2", "w") as z:
        z.writestr("dump.xml", bz2.decompress(DUMP_2019.read_bytes()))
    (bad / "a-directory.xml").mkdir()
    for path in sorted(bad.iterdir()):
        capsys.readouterr()
        code = main(["wiki-pairs", "--dump", str(path), "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2, path.name
        assert out.read_bytes() == before, path.name
        assert path.name in err and "error" in err, err
    assert not list(tmp_path.glob(".pairs.parquet.*.tmp"))


def test_source_comes_from_siteinfo(tmp_path, xml_2019):
    """An enwiki dump gives source 'enwiki', not 'simplewiki'."""
    enwiki = tmp_path / "enwiki-sample.xml"
    enwiki.write_text(xml_2019.replace("<dbname>simplewiki</dbname>", "<dbname>enwiki</dbname>"), encoding="utf-8")
    dump_to_pairs(enwiki, tmp_path / "en.parquet")
    rows = _rows(tmp_path / "en.parquet")
    assert rows and {r["source"] for r in rows} == {"enwiki"}
    assert file_metadata(tmp_path / "en.parquet")["cmisc.source"] == "enwiki"
    dump_to_pairs(DUMP_2019, tmp_path / "simple.parquet")
    assert {r["source"] for r in _rows(tmp_path / "simple.parquet")} == {"simplewiki"}


def test_summary_counts_dropped_templates_and_images_without_text(tmp_path):
    summary = dump_to_pairs(DUMP_2019, tmp_path / "p.parquet")
    assert summary["templates_dropped"] > 0 and summary["templates_dropped_top"]
    assert sum(summary["templates_dropped_top"].values()) <= summary["templates_dropped"]
    assert summary["images_without_text"] >= 0 and "templates_rendered" in summary


def _multistream(xml: str, out, times: int, per_stream: int) -> None:
    """The dump's pages ``times`` over (new ids and titles), written as Wikimedia's
    multistream files are: a header stream, streams of ``per_stream`` pages, a footer."""
    head, rest = xml.split("<page>", 1)
    body, tail = ("<page>" + rest).rsplit("</page>", 1)
    pages = re.findall(r"<page>.*?</page>", body + "</page>", flags=re.DOTALL)
    copies = []
    for k in range(times):
        for page in pages:
            if k:
                page = re.sub(r"(<title>)([^<]*)", lambda m, k=k: f"{m.group(1)}{m.group(2)} ({k})", page, count=1)
                page = re.sub(r"(</ns>\s*<id>)(\d+)", lambda m, k=k: f"{m.group(1)}{int(m.group(2)) + k * 1000}",
                              page, count=1)
            copies.append("  " + page + "\n")
    with open(out, "wb") as f:
        f.write(bz2.compress(head.encode()))
        f.writelines(bz2.compress("".join(copies[i : i + per_stream]).encode()) for i in range(0, len(copies), per_stream))
        f.write(bz2.compress(tail.encode()))


def test_workers_split_a_multistream_dump_and_give_the_same_file(tmp_path, xml_2019):
    """--workers N on a multistream dump: each worker decompresses its own
    streams; the file and the summary equal the one-process run's."""
    from cmisc_model.sources.wiki_dump import stream_ranges

    dump = tmp_path / "simplewiki-20190601-pages-articles-multistream.xml.bz2"
    _multistream(xml_2019, dump, times=12, per_stream=5)
    assert len(stream_ranges(dump, per_range=1)) == 2 + 84 // 5 + 1
    one = dump_to_pairs(dump, tmp_path / "one.parquet")
    two = dump_to_pairs(dump, tmp_path / "two.parquet", workers=2)
    assert one["pages_seen"] == 84 and one["pairs"] > 100
    assert one == two
    assert _rows(tmp_path / "one.parquet") == _rows(tmp_path / "two.parquet")


def test_truncated_multistream_with_workers_reports_like_one_process(tmp_path, xml_2019):
    dump = tmp_path / "cut.xml.bz2"
    _multistream(xml_2019, dump, times=6, per_stream=5)
    data = dump.read_bytes()
    dump.write_bytes(data[: len(data) * 2 // 3])
    one = dump_to_pairs(dump, tmp_path / "one.parquet")
    two = dump_to_pairs(dump, tmp_path / "two.parquet", workers=2)
    assert one["incomplete"] and one == two
    assert _rows(tmp_path / "one.parquet") == _rows(tmp_path / "two.parquet")
