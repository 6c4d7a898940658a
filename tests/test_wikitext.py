"""Wikitext -> pairs: real Simple English Wikipedia pages checked by hand, and
the cleaning and image rules on small snippets."""

from __future__ import annotations

import bz2
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cmisc_model.schemas import PAIRS, from_rows, make_pair_id
from cmisc_model.sources import wikitext
from cmisc_model.sources.wikitext import WikitextError, WikitextOptions, commons_url, page_pairs
from tests.conftest import REALDATA as _REAL

REALDATA = _REAL / "wiki"
DUMP_2019 = REALDATA / "simplewiki-2019-7pages.xml.bz2"


@pytest.fixture(scope="module")
def pages() -> dict[str, tuple[int, str]]:
    """title -> (page id, wikitext), read independently of the dump reader."""
    with bz2.open(DUMP_2019) as f:
        root = ET.fromstring(f.read())
    ns = root.tag[: root.tag.index("}") + 1]
    out = {}
    for p in root.iter(ns + "page"):
        out[p.findtext(ns + "title")] = (
            int(p.findtext(ns + "id")),
            p.find(f"{ns}revision/{ns}text").text,
        )
    return out


def _pairs(pages, title, **opts):
    page_id, text = pages[title]
    return page_pairs(title, page_id, text, options=WikitextOptions(**opts))


def _all_sentences(row):
    return [s for b in row["text_blocks"] for s in b["sentences"]]


# --------------------------------------------------------------------------- real pages, checked by hand


def test_april_section_image_gets_its_section_text_and_rendered_caption(pages):
    # bzcat: "== The Month ==" opens with
    # [[File:Colorful spring garden.jpg|thumb|180px|right|[[Spring]] flowers in April in the [[Northern Hemisphere]].]]
    # The other April thumbnails sit in sections that hold only lists (dropped by default).
    rows = _pairs(pages, "April")
    assert [r["image_title"] for r in rows] == ["File:Colorful spring garden.jpg"]
    (row,) = rows
    assert row["position"] == "section"
    assert row["section_path"] == ["The Month"]
    assert row["caption"] == "Spring flowers in April in the Northern Hemisphere."
    assert [b["titles"] for b in row["text_blocks"]] == [["The Month"]]
    sentences = row["text_blocks"][0]["sentences"]
    assert (
        sentences[0] == "April comes between March and May, making it the fourth month of the year."
    )
    assert sentences[-1].startswith(
        "At the end of the month, Central and Northern European cultures"
    )
    # Lead text is not part of a section image's text.
    assert not any("birthstone" in s for s in sentences)
    assert row["doc_id"] == "1" and row["url"] == "https://simple.wikipedia.org/wiki/April"
    assert row["pair_id"] == make_pair_id("simplewiki", "1", "Colorful_spring_garden.jpg")
    assert row["image_url"] == (
        "https://upload.wikimedia.org/wikipedia/commons/9/92/Colorful_spring_garden.jpg"
    )
    assert row["image_status"] == "missing"


def test_april_lists_option_pairs_subsection_images(pages):
    rows = _pairs(pages, "April", include_lists=True)
    by_title = {r["image_title"]: r for r in rows}
    hoax = by_title["File:Aprilsnar 2001.png"]
    assert hoax["section_path"] == ["Events in April", "Fixed Events"]
    assert hoax["caption"] == "An April Fools' Day hoax for April 1 in Copenhagen."
    assert hoax["text_blocks"][0]["sentences"][0] == "April 1 - April Fools' Day"
    assert len(rows) == 18  # every thumbnail of the page (1 + 7 + 2 + 7 + 1) once list text counts


def test_art_lead_image_gets_whole_article_and_section_images_their_section(pages):
    rows = _pairs(pages, "Art")
    lead = [r for r in rows if r["position"] == "lead"]
    assert [r["image_title"] for r in lead] == [
        "File:Pierre-Auguste_Renoir,_Le_Moulin_de_la_Galette.jpg"
    ]
    (lead,) = lead
    # link=https://… and 300x300px are options, not caption.
    assert lead["caption"] == "A painting by Renoir is a work of art."
    titles = [b["titles"] for b in lead["text_blocks"]]
    assert titles[0] == ["Art"]
    assert ["Types of art"] in titles and ["History of art"] in titles
    assert ["Roles of art", "Functions of art"] in titles
    assert ["References"] not in titles and ["Related pages"] not in titles
    assert lead["text_blocks"][0]["sentences"][0].startswith(
        "Art and crafts is a creative activity"
    )

    sections = [r for r in rows if r["position"] == "section"]
    assert len(sections) == 3
    assert all(r["section_path"] == ["Types of art"] for r in sections)
    chicago = next(r for r in sections if r["image_title"] == "File:Chicago2_(MdB).jpg")
    assert (
        chicago["caption"] == "A scene from the Musical Chicago, performed at a theatre, in Brno."
    )
    assert chicago["text_blocks"] == [
        {
            "titles": ["Types of art"],
            "sentences": [
                (
                    "Art is divided into the plastic arts, where something is made, and the "
                    "performing arts, where something is done by humans in action."
                ),
                (
                    "The other division is between pure arts, done for themselves, and practical "
                    "arts, done for a practical purpose, but with artistic content."
                ),
            ],
        }
    ]
    # Non-ASCII file names: md5 of the UTF-8 name, URL-encoded.
    botero = next(r for r in sections if r["image_title"].startswith("File:Estátuas"))
    assert "/Est%C3%A1tuas_de_Botero" in botero["image_url"]
    from_rows(rows, PAIRS, "art")  # every column present and typed


def test_air_image_alias_and_interwiki_caption(pages):
    rows = _pairs(pages, "Air")
    assert [r["image_title"] for r in rows] == [
        "Image:Air composition pie chart.JPG",
        "Image:Kawasaki-Electric Fan.jpg",
    ]
    assert all(r["position"] == "lead" for r in rows)
    assert rows[1]["caption"] == "A fan is used to move air"  # [[wikt:fan|fan]]
    text = " ".join(_all_sentences(rows[0]))
    assert "78% nitrogen" in text
    assert "citeweb" not in text and "mistupid" not in text and "Zimmer" not in text  # refs gone


def test_table_images_are_an_option(pages):
    default = _pairs(pages, "A")
    assert [r["image_title"] for r in default] == ["File:A cursiva.gif"]  # thumb, empty caption
    assert default[0]["caption"] == ""
    assert "Egyptian" not in " ".join(_all_sentences(default[0]))  # table text dropped
    with_tables = _pairs(pages, "A", include_table_images=True)
    table = [r for r in with_tables if r["position"] == "section"]
    assert [r["caption"] for r in table] == [
        "Egyptian hieroglyphic ox head",
        "Phoenician aleph",
        "Greek alpha",
        "Etruscan A",
        "Roman A",
    ]
    assert all(r["section_path"] == ["Where it came from"] for r in table)
    assert _pairs(pages, "A", require_caption=True) == []


def test_prestrip_changes_nothing_but_speed(pages, monkeypatch):
    before = {
        t: page_pairs(t, i, x, options=WikitextOptions(include_lists=True))
        for t, (i, x) in pages.items()
    }
    monkeypatch.setattr(wikitext, "prestrip", lambda text, *args, **kwargs: text)
    after = {
        t: page_pairs(t, i, x, options=WikitextOptions(include_lists=True))
        for t, (i, x) in pages.items()
    }
    assert before == after


# --------------------------------------------------------------------------- rules on snippets

SNIPPET = """{{Infobox thing|image=Box photo.jpg|caption=The box}}
'''Thing''' is a [[Object|thing]].<ref>{{cite web|url=http://x.org}}</ref> It is red.<!-- hidden -->
{| class="wikitable"
| cell text that must not appear
|}
* a list item
[[Category:Things]] [[fr:Chose]]
[[File:Lead pic.jpg|thumb|upright=1.2|alt=A red box|The [[Box (object)|box]] at ''night'']]

== History ==
[[File:Old.png|thumb|left|Old times]]
[[File:Icon.svg|20px]]
[[File:Sound.ogg|thumb|A sound]]
The thing began in 1900. It grew.

=== Later ===
[[File:Old.png|thumb|Old times again]]
Later it changed.
<gallery>
File:G1.jpg|First [[gallery]] picture
G2.jpg|Second
</gallery>

== References ==
[[File:Refs.jpg|thumb|Not article prose]]
{{reflist}}
"""


def test_snippet_cleaning_and_image_rules():
    rows = page_pairs("Thing", 42, SNIPPET)
    titles = [r["image_title"] for r in rows]
    # Inline icon (no thumb), audio file, References section: dropped.
    assert titles == ["File:Lead pic.jpg", "File:Old.png", "File:Old.png"]
    lead, history, later = rows
    assert lead["caption"] == "The box at night"
    assert lead["alt"] == "A red box"
    assert lead["text_blocks"] == [
        {"titles": ["Thing"], "sentences": ["Thing is a thing.", "It is red."]},
        {"titles": ["History"], "sentences": ["The thing began in 1900.", "It grew."]},
        {"titles": ["History", "Later"], "sentences": ["Later it changed."]},
    ]
    assert history["text_blocks"] == [
        {"titles": ["History"], "sentences": ["The thing began in 1900.", "It grew."]}
    ]
    assert later["section_path"] == ["History", "Later"]
    # The same file twice on one page: the second use gets "#2".
    assert history["pair_id"] == make_pair_id("simplewiki", "42", "Old.png")
    assert later["pair_id"] == make_pair_id("simplewiki", "42", "Old.png#2")


def test_snippet_options():
    rows = page_pairs("Thing", 42, SNIPPET, options=WikitextOptions(subsection_text=True))
    history = next(r for r in rows if r["section_path"] == ["History"])
    assert [b["titles"] for b in history["text_blocks"]] == [["History"], ["History", "Later"]]

    rows = page_pairs(
        "Thing", 42, SNIPPET, options=WikitextOptions(include_gallery=True, include_infobox=True)
    )
    by_title = {r["image_title"]: r for r in rows}
    assert by_title["File:G1.jpg"]["caption"] == "First gallery picture"
    assert by_title["G2.jpg"]["section_path"] == ["History", "Later"]
    assert by_title["Box photo.jpg"]["caption"] == "The box"
    assert by_title["Box photo.jpg"]["position"] == "lead"

    rows = page_pairs("Thing", 42, SNIPPET, options=WikitextOptions(thumbs_only=False))
    assert "File:Icon.svg" in [r["image_title"] for r in rows]

    rows = page_pairs("Thing", 42, SNIPPET, options=WikitextOptions(include_lists=True))
    assert "a list item" in rows[0]["text_blocks"][0]["sentences"]


def test_localised_file_namespace_and_min_sentences():
    text = (
        "Ein Satz.\n[[Datei:Haus.jpg|mini|Ein Haus]]\n== Leer ==\n[[Datei:Dach.jpg|thumb|Dach]]\n"
    )
    rows = page_pairs(
        "Haus", 7, text, file_namespaces=("Datei",), base_url="https://de.wikipedia.org/wiki/"
    )
    # "mini" is a German thumb keyword MediaWiki knows; we only know English ones,
    # so it is read as the caption's predecessor and the caption still wins.
    assert [r["image_title"] for r in rows] == []  # not framed in English terms: dropped
    rows = page_pairs(
        "Haus", 7, text, file_namespaces=("Datei",), options=WikitextOptions(thumbs_only=False)
    )
    assert [r["image_title"] for r in rows] == ["Datei:Haus.jpg"]  # "Leer" has no text
    assert rows[0]["caption"] == "Ein Haus"
    assert page_pairs("Haus", 7, text) == []  # without the alias, Datei: is just a link


def test_bad_wikitext_is_a_named_error():
    with pytest.raises(WikitextError, match="'Broken'"):
        page_pairs("Broken", 5, None)  # type: ignore[arg-type]


def test_commons_url_matches_known_paths():
    # Verified against real API responses (data_sources.md §3.3).
    assert commons_url("Albert Einstein Head.jpg").endswith("/d/d3/Albert_Einstein_Head.jpg")
    assert commons_url("python-logo-notext.svg").endswith("/c/c3/Python-logo-notext.svg")
    assert re.match(
        r"^https://upload\.wikimedia\.org/wikipedia/commons/./../", commons_url("x.png")
    )


def test_prestrip_changes_nothing_on_gensim_enwiki_excerpt(monkeypatch):
    """The same check on 106 real enwiki articles heavy in templates, refs and tables."""
    gensim_data = pytest.importorskip("gensim").__file__
    path = (
        Path(gensim_data).parent
        / "test"
        / "test_data"
        / ("enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    )
    if not path.exists():
        pytest.skip(f"{path} not shipped with this gensim")
    from cmisc_model.sources.wiki_dump import is_article, iter_pages

    pages = [p for p in iter_pages(path) if is_article(p) and "[[File:" in p.text]
    assert len(pages) > 50
    before = [page_pairs(p.title, p.page_id, p.text) for p in pages]
    monkeypatch.setattr(wikitext, "prestrip", lambda text, *args, **kwargs: text)
    after = [page_pairs(p.title, p.page_id, p.text) for p in pages]
    assert before == after
    assert sum(map(len, before)) > 500


# --------------------------------------------------------------------------- prose templates, entities, sentence splitting

PROSE = """[[File:Rain.jpg|thumb|Rain]]
Alabama receives an average of {{convert|56|in|mm}} of rainfall annually.
The average low temperature in Barrow is {{convert|-13|F|C|abbr=on}}.
Its name is {{lang|fr|Barrou}} in French, and it lies {{nowrap|300 miles}} north.
{{As of|2010}}, '''Barrow'''{{'s}} population was {{convert|4|to|5|km}} wide. {{cite web|url=x}}
"""


@pytest.mark.parametrize("infobox", [False, True])  # both the pre-stripped and the parser path
def test_prose_templates_are_rendered_not_dropped(infobox):
    stats: dict = {}
    (row,) = page_pairs("Barrow", 1, PROSE, options=WikitextOptions(include_infobox=infobox), stats=stats)
    assert _all_sentences(row) == [
        "Alabama receives an average of 56 inches of rainfall annually.",
        "The average low temperature in Barrow is -13 °F.",
        "Its name is Barrou in French, and it lies 300 miles north.",
        "As of 2010, Barrow's population was 4 to 5 km wide.",
    ]
    assert stats["templates_dropped"] == 1 and stats["templates_dropped_by_name"] == {"cite web": 1}
    assert stats["templates_rendered"] == 7


def test_prose_templates_come_from_params():
    """The list is an option: without `convert` the value is dropped (and counted)."""
    rules = {k: v for k, v in WikitextOptions().prose_templates.items() if k != "convert"}
    stats: dict = {}
    (row,) = page_pairs("Barrow", 1, PROSE, options=WikitextOptions(prose_templates=rules), stats=stats)
    assert "Alabama receives an average of of rainfall annually." in _all_sentences(row)
    assert stats["templates_dropped_by_name"]["convert"] == 3


def test_entities_in_link_targets_are_decoded():
    text = "[[File:Mac.png|thumb|A Mac]]\nIt runs [[OS&nbsp;X]] and [[Mac&amp;Co]] software."
    (row,) = page_pairs("Mac", 1, text)
    assert _all_sentences(row) == ["It runs OS X and Mac&Co software."]


def test_sentence_splitter_knows_ranks_and_non_latin_capitals():
    from cmisc_model.text.sentences import split_sentences

    assert split_sentences("He served under Maj. Smith and Brig. Jones. They won.") == [
        "He served under Maj. Smith and Brig. Jones.", "They won."]
    bulgarian = "София е столицата на България. Тя е най-големият град. Населението е голямо."
    assert split_sentences(bulgarian) == [
        "София е столицата на България.", "Тя е най-големият град.", "Населението е голямо."]
    assert split_sentences("Η Αθήνα είναι πόλη. Είναι παλιά.") == ["Η Αθήνα είναι πόλη.", "Είναι παλιά."]
    assert split_sentences("It cost 5 vs. 6 units. ok then.") == ["It cost 5 vs. 6 units. ok then."]


def test_path_traversal_image_titles_are_rejected_with_a_reason():
    text = ("[[File:../../etc/passwd.jpg|thumb|Evil]]\n[[File:Good photo.jpg|thumb|Fine]]\n"
            "Some prose about the page.")
    rows = {r["caption"]: r for r in page_pairs("Evil", 1, text)}
    assert rows["Evil"]["image_status"] == "rejected:unsafe-file-name"
    assert rows["Evil"]["image_url"] is None
    assert rows["Fine"]["image_status"] == "missing" and rows["Fine"]["image_url"].endswith("Good_photo.jpg")


def test_images_in_sections_without_prose_are_counted():
    text = ("Lead prose here.\n== Gallery-like ==\n[[File:A.jpg|thumb|A]]\n[[File:B.jpg|thumb|B]]\n"
            "== Text ==\n[[File:C.jpg|thumb|C]]\nSome text.")
    stats: dict = {}
    rows = page_pairs("P", 1, text, stats=stats)
    assert [r["caption"] for r in rows] == ["C"]
    assert stats["images_without_text"] == 2


def test_prestrip_changes_nothing_on_real_simple_pages_with_default_options(pages, monkeypatch):
    """Links flattened and list lines emptied before parsing (the speed-ups for
    Simple-style pages) give exactly the rows of the full parse, on the real
    2019 and 2023 pages."""
    from cmisc_model.sources.wiki_dump import DumpTruncatedError, is_article, iter_pages

    texts = [(t, i, x) for t, (i, x) in pages.items()]
    try:
        for p in iter_pages(REALDATA / "simplewiki-2023-truncated.xml"):
            if is_article(p):
                texts.append((p.title, p.page_id, p.text))
    except DumpTruncatedError:
        pass
    assert len(texts) >= 12
    options = [WikitextOptions(), WikitextOptions(include_gallery=True, include_table_images=True)]
    before = [[page_pairs(t, i, x, options=o) for t, i, x in texts] for o in options]
    monkeypatch.setattr(wikitext, "prestrip", lambda text, *args, **kwargs: text)
    after = [[page_pairs(t, i, x, options=o) for t, i, x in texts] for o in options]
    assert before == after
    assert sum(len(r) for r in before[0]) > 10


def test_prestrip_changes_nothing_on_gensim_enwiki_excerpt_with_infobox_images(monkeypatch):
    """Templates kept for their images may span list lines: those stay whole."""
    gensim_data = pytest.importorskip("gensim").__file__
    path = (Path(gensim_data).parent / "test" / "test_data"
            / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    if not path.exists():
        pytest.skip(f"{path} not shipped with this gensim")
    from cmisc_model.sources.wiki_dump import is_article, iter_pages

    pages = [p for p in iter_pages(path) if is_article(p) and "[[File:" in p.text]
    options = WikitextOptions(include_infobox=True, include_gallery=True)
    before = [page_pairs(p.title, p.page_id, p.text, options=options) for p in pages]
    monkeypatch.setattr(wikitext, "prestrip", lambda text, *args, **kwargs: text)
    after = [page_pairs(p.title, p.page_id, p.text, options=options) for p in pages]
    assert before == after
