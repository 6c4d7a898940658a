"""The action=parse HTML extractor, in both MediaWiki thumbnail markups, against the wikitext path."""

from __future__ import annotations

import pytest

from cmisc_model.schemas import make_pair_id
from cmisc_model.sources.wiki_html import HtmlError, html_pairs
from cmisc_model.sources.wikitext import WikitextOptions, page_pairs
from tests.fake_mediawiki import render_html

PAGES = {
    "Cat": (
        "[[File:Cat_sitting.jpg|thumb|right|A [[cat]] sitting on a ''mat''.<ref>Book.</ref>]]\n"
        "'''Cats''' are small [[mammal]]s.<ref>A source.</ref> They like to sleep. Mr. Smith has one.\n"
        "\n"
        "They purr {{citation needed}} when happy.\n"
        "\n"
        "== Body ==\n"
        "[[File:Cat paw.png|thumb|upright=0.8|alt=A paw|The paw of a cat]]\n"
        "Cats have four paws. Each paw has claws.\n"
        "* A list item, dropped by default.\n"
        "\n"
        "=== Claws ===\n"
        "Claws are sharp. [[File:Tiny icon.svg|20px]] They grow back.\n"
        "[[File:Claw.jpg|frame|A claw, framed.]]\n"
        "\n"
        "== References ==\n"
        "[[File:Ref.jpg|thumb|Never paired.]]\n"
        "{{reflist}}\n"
    ),
    "River": (
        "A '''river''' is flowing [[water]]. Rivers go to the sea.\n"
        "\n"
        "== Parts ==\n"
        "[[File:River source.jpg|thumb|The source of a river.]]\n"
        "[[File:River source.jpg|thumb|The same picture again.]]\n"
        "A river starts at its source. It ends at its mouth.\n"
        "\n"
        "== Empty section ==\n"
        "[[File:Lonely.jpg|thumb|No text here.]]\n"
        "\n"
        "== Uses ==\n"
        "People use rivers for [[transport]]. Boats carry goods.\n"
    ),
    "Moon": (
        "[[Image:Full moon.jpeg|thumb|The [[Moon]] at night]]\n"
        "[[File:Moon phases.gif|thumbnail|left|Phases of the Moon.]]\n"
        "The '''Moon''' goes around the [[Earth]]. It has no air.\n"
        "\n"
        "== Exploration ==\n"
        "People first walked on the Moon in 1969.\n"
    ),
}
IDS = {"Cat": 11, "River": 22, "Moon": 33}


def _key(r: dict) -> tuple:
    return (r["pair_id"], r["position"], tuple(r["section_path"]), r["caption"])


def _sentences(r: dict) -> list[tuple]:
    return [(tuple(b["titles"]), tuple(b["sentences"])) for b in r["text_blocks"]]


@pytest.mark.parametrize("markup", ["figure", "legacy"])
def test_html_and_wikitext_agree_on_the_same_pages(markup):
    for title, wikitext in PAGES.items():
        from_wikitext = page_pairs(title, IDS[title], wikitext, revision_id=5)
        from_html = html_pairs(title, IDS[title], render_html(title, wikitext, markup), revision_id=5)
        assert from_wikitext, title
        assert sorted(map(_key, from_html)) == sorted(map(_key, from_wikitext)), (title, markup)
        by_id = {r["pair_id"]: r for r in from_wikitext}
        for r in from_html:
            assert _sentences(r) == _sentences(by_id[r["pair_id"]]), (title, r["caption"])
            assert r["alt"] == by_id[r["pair_id"]]["alt"]
            assert r["revision_id"] == 5 and r["url"] == by_id[r["pair_id"]]["url"]


def test_pairing_rules_in_html():
    rows = html_pairs("Cat", 11, render_html("Cat", PAGES["Cat"], "figure"))
    by_caption = {r["caption"]: r for r in rows}
    assert set(by_caption) == {"A cat sitting on a mat.", "The paw of a cat", "A claw, framed."}
    lead = by_caption["A cat sitting on a mat."]
    assert lead["position"] == "lead" and lead["section_path"] == []
    assert lead["pair_id"] == make_pair_id("simplewiki", "11", "Cat_sitting.jpg")
    # A lead image sees the whole article; titles of the lead block = [article title].
    assert [b["titles"] for b in lead["text_blocks"]] == [["Cat"], ["Body"], ["Body", "Claws"]]
    assert lead["text_blocks"][0]["sentences"] == [
        "Cats are small mammals.", "They like to sleep.", "Mr. Smith has one.", "They purr when happy.",
    ]
    paw = by_caption["The paw of a cat"]
    assert paw["position"] == "section" and paw["section_path"] == ["Body"]
    assert paw["text_blocks"] == [{"titles": ["Body"], "sentences": ["Cats have four paws.", "Each paw has claws."]}]
    assert paw["alt"] == "A paw"
    claw = by_caption["A claw, framed."]
    assert claw["section_path"] == ["Body", "Claws"]
    assert claw["text_blocks"][0]["sentences"] == ["Claws are sharp.", "They grow back."]


def test_repeated_file_and_empty_section():
    rows = html_pairs("River", 22, render_html("River", PAGES["River"], "legacy"))
    ids = [r["pair_id"] for r in rows]
    assert ids == [
        make_pair_id("simplewiki", "22", "River_source.jpg"),
        make_pair_id("simplewiki", "22", "River_source.jpg#2"),
    ]  # Lonely.jpg: its section has no text (min_sentences = 1)


# Real-world shapes, written by hand after the markup Wikimedia serves.
CURRENT_HTML = """<div class="mw-content-ltr mw-parser-output" lang="en" dir="ltr">
<div class="shortdescription nomobile noexcerpt noprint searchaux" style="display:none">Large cat</div>
<table class="infobox biota"><tbody><tr><td><span typeof="mw:File"><a href="/wiki/File:Lion_waiting.jpg" class="mw-file-description"><img src="//upload.wikimedia.org/wikipedia/commons/thumb/7/73/Lion_waiting.jpg/250px-Lion_waiting.jpg" class="mw-file-element"></a></span></td></tr></tbody></table>
<figure class="mw-default-size" typeof="mw:File/Thumb"><a href="./File:Lion%C3%A9_d%27Or.jpg" class="mw-file-description"><img alt="A lion" resource="./File:Lion%C3%A9_d%27Or.jpg" src="//upload.wikimedia.org/wikipedia/simple/thumb/a/ab/Lion%C3%A9_d%27Or.jpg/250px-Lion%C3%A9_d%27Or.jpg" class="mw-file-element"></a><figcaption>A <a href="/wiki/Lion">lion</a>&#160;resting<sup id="cite_ref-1" class="reference"><a href="#cite_note-1"><span class="cite-bracket">[</span>1<span class="cite-bracket">]</span></a></sup></figcaption></figure>
<p>The <b>lion</b> is a big cat.<sup class="reference"><a href="#c">[2]</a></sup> It lives in Africa.
</p>
<div class="mw-heading mw-heading2"><h2 id="Food">Food</h2><span class="mw-editsection"><span class="mw-editsection-bracket">[</span><a href="/w/index.php?title=Lion&amp;action=edit&amp;section=1">change</a><span class="mw-editsection-bracket">]</span></span></div>
<div role="note" class="hatnote navigation-not-searchable">Main article: Hunting</div>
<figure class="mw-halign-left" typeof="mw:File/Frame"><a href="https://simple.wikipedia.org/wiki/Hunting" class="mw-file-description"><img src="//upload.wikimedia.org/wikipedia/commons/thumb/0/01/Lions_hunting.jpg/330px-Lions_hunting.jpg" class="mw-file-element"></a><figcaption>Lions hunting</figcaption></figure>
<p>Lions eat meat. They hunt in groups.</p>
<ul class="gallery mw-gallery-traditional"><li class="gallerybox"><div class="thumb"><span typeof="mw:File"><a href="/wiki/File:Cub.jpg" class="mw-file-description"><img src="//upload.wikimedia.org/wikipedia/commons/thumb/c/c1/Cub.jpg/120px-Cub.jpg"></a></span></div><div class="gallerytext">A cub</div></li></ul>
<div class="mw-heading mw-heading2"><h2 id="Other_websites">Other websites</h2></div>
<figure typeof="mw:File/Thumb"><a href="/wiki/File:Logo.png"><img src="//upload.wikimedia.org/x/Logo.png"></a><figcaption>Not article text</figcaption></figure>
<ul><li>A link</li></ul>
<div class="navbox"><p>Navigation text.</p></div>
</div>"""

LEGACY_HTML = """<div class="mw-parser-output"><div class="thumb tright"><div class="thumbinner" style="width:222px;"><a href="/wiki/File:Lion%C3%A9_d%27Or.jpg" class="image"><img alt="A lion" src="//upload.wikimedia.org/wikipedia/simple/thumb/a/ab/Lion%C3%A9_d%27Or.jpg/220px-Lion%C3%A9_d%27Or.jpg" width="220" height="147" class="thumbimage"></a>  <div class="thumbcaption"><div class="magnify"><a href="/wiki/File:Lion%C3%A9_d%27Or.jpg" class="internal" title="Enlarge"></a></div>A <a href="/wiki/Lion">lion</a> resting<sup id="cite_ref-1" class="reference"><a href="#cite_note-1">[1]</a></sup></div></div></div>
<p>The <b>lion</b> is a big cat.<sup class="reference"><a href="#c">[2]</a></sup> It lives in Africa.
</p>
<div id="toc" class="toc"><p>Contents</p></div>
<h2><span class="mw-headline" id="Food">Food</span><span class="mw-editsection"><span class="mw-editsection-bracket">[</span><a href="#">change</a><span class="mw-editsection-bracket">]</span></span></h2>
<div role="note" class="hatnote">Main article: Hunting</div>
<div class="thumb tleft"><div class="thumbinner"><a href="https://simple.wikipedia.org/wiki/Hunting" class="image"><img src="//upload.wikimedia.org/wikipedia/commons/thumb/0/01/Lions_hunting.jpg/330px-Lions_hunting.jpg" class="thumbimage"></a><div class="thumbcaption">Lions hunting</div></div></div>
<div class="thumb tmulti tright"><div class="thumbinner">multiple images are not a single thumb</div></div>
<p>Lions eat meat. They hunt in groups.</p>
<h2><span class="mw-headline" id="Other_websites">Other websites</span></h2>
<div class="thumb tright"><div class="thumbinner"><a href="/wiki/File:Logo.png" class="image"><img src="//upload.wikimedia.org/x/Logo.png"></a><div class="thumbcaption">Not article text</div></div></div>
</div>"""


@pytest.mark.parametrize("html", [CURRENT_HTML, LEGACY_HTML], ids=["figure", "legacy"])
def test_real_world_markup(html):
    rows = html_pairs("Lion", 77, html, revision_id=9)
    assert [(r["caption"], r["position"], r["section_path"]) for r in rows] == [
        ("A lion resting", "lead", []),
        ("Lions hunting", "section", ["Food"]),
    ]
    lead, hunt = rows
    # File name from the link, percent-decoded; the link= image falls back to the src.
    assert lead["pair_id"] == make_pair_id("simplewiki", "77", "Lioné_d'Or.jpg")
    assert hunt["pair_id"] == make_pair_id("simplewiki", "77", "Lions_hunting.jpg")
    assert lead["alt"] == "A lion"
    # A local upload's original URL comes from its thumbnail src (not Commons).
    assert lead["image_url"] == "https://upload.wikimedia.org/wikipedia/simple/a/ab/Lion%C3%A9_d%27Or.jpg"
    assert [b["titles"] for b in lead["text_blocks"]] == [["Lion"], ["Food"]]
    assert lead["text_blocks"][0]["sentences"] == ["The lion is a big cat.", "It lives in Africa."]
    assert hunt["text_blocks"] == [{"titles": ["Food"], "sentences": ["Lions eat meat.", "They hunt in groups."]}]


def test_options_lists_gallery_inline_images():
    opts = WikitextOptions(include_lists=True, include_gallery=True, thumbs_only=False)
    rows = html_pairs("Lion", 77, CURRENT_HTML, options=opts)
    captions = {r["caption"] for r in rows}
    assert "A cub" in captions  # gallery
    cat_rows = html_pairs("Cat", 11, render_html("Cat", PAGES["Cat"]), options=opts)
    assert "Tiny_icon.svg" in {r["image_title"].split(":", 1)[1].replace(" ", "_") for r in cat_rows}
    paw = next(r for r in cat_rows if r["caption"] == "The paw of a cat")
    assert "A list item, dropped by default." in paw["text_blocks"][0]["sentences"]
    wikitext_rows = page_pairs("Cat", 11, PAGES["Cat"], options=opts)
    assert sorted(map(_key, cat_rows)) == sorted(map(_key, wikitext_rows))


def test_bad_input_names_the_page():
    with pytest.raises(HtmlError, match="'Broken'"):
        html_pairs("Broken", 1, None)
    assert html_pairs("Empty", 2, "") == []
    assert html_pairs("Junk", 3, "<div><figure typeof='mw:File/Thumb'><figcaption>no image") == []


PARSOID_HTML = """<section data-mw-section-id="0"><p>Water is a liquid.<sup class="reference"><a href="#n"><span class="cite-bracket">[</span>1<span class="cite-bracket">]</span></a></sup> Its density follows <span class="mwe-math-element"><math alttext="\\rho=m/V"><mi>ρ</mi></math><img src="./m.svg" class="mwe-math-fallback-image-inline" alt="\\rho=m/V"></span> at room temperature.</p>
<figure typeof="mw:File/Thumb"><a href="./File:Drop.jpg"><img resource="./File:Drop.jpg" src="//upload.wikimedia.org/wikipedia/commons/thumb/1/1a/Drop.jpg/250px-Drop.jpg"></a><figcaption>A water drop</figcaption></figure></section>
<section data-mw-section-id="1"><div class="mw-heading mw-heading2"><h2 id="History">History</h2><span class="mw-editsection"><a href="edit">edit</a></span></div><p>People always used water.</p>
<section data-mw-section-id="2"><div class="mw-heading mw-heading3"><h3 id="Ancient_uses">Ancient uses</h3></div>
<figure typeof="mw:File/Frame"><a href="./File:Canal.png"><img src="//upload.wikimedia.org/wikipedia/commons/2/2b/Canal.png"></a><figcaption>An old canal</figcaption></figure>
<p>Canals moved water to fields.</p><ul><li>Irrigation</li></ul></section></section>"""


def test_parsoid_sections_and_math():
    rows = html_pairs("Water", 5, PARSOID_HTML)
    assert [(r["caption"], r["section_path"]) for r in rows] == [
        ("A water drop", []),
        ("An old canal", ["History", "Ancient uses"]),
    ]
    drop, canal = rows
    assert drop["text_blocks"] == [
        {"titles": ["Water"], "sentences": ["Water is a liquid.", "Its density follows at room temperature."]},
        {"titles": ["History"], "sentences": ["People always used water."]},
        {"titles": ["History", "Ancient uses"], "sentences": ["Canals moved water to fields."]},
    ]
    assert canal["image_url"] == "https://upload.wikimedia.org/wikipedia/commons/2/2b/Canal.png"
    assert drop["image_url"] == "https://upload.wikimedia.org/wikipedia/commons/1/1a/Drop.jpg"
