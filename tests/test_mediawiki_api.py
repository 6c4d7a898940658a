"""The MediaWiki Action API scraper against a local fake wiki (tests/fake_mediawiki.py)."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from cmisc_model import cli
from cmisc_model.errors import CmiscError
from cmisc_model.schemas import PAIRS, file_metadata, make_pair_id, read_table
from cmisc_model.sources import mediawiki_api as api
from cmisc_model.sources.http import FetchError, PoliteSession
from cmisc_model.sources.wikitext import page_pairs
from tests.fake_mediawiki import FakePage, FakeWiki, Fault

UA = "cmisc-tests/0.1 (https://example.org/cmisc; tests@example.org)"


def _page(title: str, image: str, cats=("Animals",)) -> FakePage:
    return FakePage(
        title,
        f"[[File:{image}|thumb|A picture of {title.lower()}.]]\n"
        f"'''{title}''' is an animal. It lives in many places.\n\n"
        f"== Food ==\n[[File:{title} food.jpg|thumb|What {title.lower()} eats.]]\n"
        f"{title} eats many things. It drinks water.\n",
        categories=list(cats),
    )


TITLES = ["Ant", "Bear", "Cat", "Dog", "Eel", "Fox", "Gnu"]


def _wiki(**kw) -> FakeWiki:
    pages = [_page(t, f"{t} photo.jpg", ("Animals",) if t != "Gnu" else ("Other",)) for t in TITLES]
    images = {f"{t} photo.jpg": f"jpeg of {t}".encode() for t in TITLES}
    images.update({f"{t} food.jpg": f"food of {t}".encode() for t in TITLES})
    return FakeWiki(pages, images, **kw)


class Sleeps(list):
    """A no-op sleep that remembers what it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _client(wiki: FakeWiki, batch_size=3, list_limit=2, allowed=("127.0.0.1",), timeout=0.5, retries=3):
    sleeps = Sleeps()
    session = PoliteSession(UA, allowed, rate_per_s=1000.0, max_retries=retries, timeout=timeout, sleep=sleeps)
    client = api.MediaWikiClient(session, wiki.endpoint, maxlag=5, batch_size=batch_size, list_limit=list_limit)
    return client, sleeps


def _content_requests(wiki: FakeWiki) -> list:
    return [r for r in wiki.api_requests() if "content" in r.params.get("rvprop", "")]


# --------------------------------------------------------------------------- client basics


def test_all_pages_follows_continuation_and_sends_etiquette():
    wiki = _wiki()
    with wiki:
        client, _ = _client(wiki, list_limit=2)
        pages = client.all_pages()
    assert [p.title for p in pages] == TITLES
    listing = [r for r in wiki.api_requests() if r.params.get("list") == "allpages"]
    assert len(listing) == 4  # 7 pages, 2 per answer
    assert [r.params.get("apcontinue") for r in listing] == [None, "Cat", "Eel", "Gnu"]
    assert all(r.params["maxlag"] == "5" and r.params["formatversion"] == "2" for r in wiki.requests)
    assert all(r.user_agent == UA for r in wiki.requests)


def test_category_members_and_limit():
    wiki = _wiki()
    with wiki:
        client, _ = _client(wiki, list_limit=2)
        members = client.category_members("Animals")
        limited = client.all_pages(limit=3)
    assert [p.title for p in members] == TITLES[:-1]  # Gnu is in another category
    assert [p.title for p in limited] == TITLES[:3]


def test_revisions_are_batched_and_merged_across_rvcontinue():
    wiki = _wiki(rv_content_limit=1)  # one page's content per answer, like a big batch
    with wiki:
        client, _ = _client(wiki, batch_size=3)
        pages = list(client.revisions(titles=TITLES + ["No such page"]))
    by_title = {p.title: p for p in pages}
    assert by_title["No such page"].missing
    for t in TITLES:
        p = by_title[t]
        assert p.wikitext == wiki.page(t).wikitext
        assert p.revision_id == wiki.page(t).revision_id
        assert p.timestamp == wiki.page(t).timestamp
    content = _content_requests(wiki)
    assert max(len(r.params["titles"].split("|")) for r in content) == 3
    assert any("rvcontinue" in r.params for r in content)


def test_image_info_local_shared_and_missing():
    pages = [_page("Cat", "Cat photo.jpg")]
    wiki = FakeWiki(
        pages,
        images={"Cat photo.jpg": b"local bytes"},
        shared_images={"Cat food.jpg": b"commons bytes"},
        image_meta={"Cat food.jpg": {"licence": "CC0", "artist": "<b>Jane</b> Doe"}},
    )
    with wiki:
        client, _ = _client(wiki)
        info = client.image_info(["File:Cat photo.jpg", "Cat_food.jpg", "Nothing.png"])
    assert info["Cat_photo.jpg"]["repository"] == "local"
    assert info["Cat_photo.jpg"]["url"] == wiki.image_url("Cat photo.jpg")
    assert info["Cat_photo.jpg"]["sha1"] == hashlib.sha1(b"local bytes").hexdigest()
    assert info["Cat_photo.jpg"]["mime"] == "image/jpeg"
    assert info["Cat_photo.jpg"]["licence"] == "CC BY-SA 4.0"
    assert info["Cat_photo.jpg"]["attribution"] == "Fake Artist"
    # A Commons file comes back "missing" + "known" from a Wikipedia: it exists.
    assert not info["Cat_food.jpg"]["missing"] and info["Cat_food.jpg"]["repository"] == "shared"
    assert info["Cat_food.jpg"]["licence"] == "CC0" and info["Cat_food.jpg"]["attribution"] == "Jane Doe"
    assert info["Nothing.png"]["missing"] and info["Nothing.png"]["url"] is None


def test_parse_html_and_api_errors():
    wiki = _wiki()
    with wiki:
        client, _ = _client(wiki)
        html = client.parse_html(title="Cat")
        assert 'typeof="mw:File/Thumb"' in html and "Cat_photo.jpg" in html
        with pytest.raises(api.ApiError) as e:
            client.parse_html(title="Nope")
    assert e.value.reason == "api-missingtitle"
    assert "page=Nope" in str(e.value)


# --------------------------------------------------------------------------- scrape


def test_scrape_titles_gives_the_dump_path_rows_plus_image_info():
    wiki = _wiki()
    with wiki:
        client, _ = _client(wiki)
        rows, summary = api.scrape(client, titles=["Cat", "Dog", "Nope"])
    assert summary.missing == ["Nope"]
    assert {p["title"] for p in summary.fetched} == {"Cat", "Dog"}
    assert summary.failed == [] and summary.pairs == len(rows) == 4
    cat = wiki.page("Cat")
    expected = page_pairs("Cat", cat.page_id, cat.wikitext, revision_id=cat.revision_id,
                          revision_timestamp=cat.timestamp, base_url=client.base_url)
    got = [r for r in rows if r["doc_title"] == "Cat"]
    skip = {"image_url", "licence", "attribution", "retrieved_at"}
    assert [{k: v for k, v in r.items() if k not in skip} for r in got] == [
        {k: v for k, v in r.items() if k not in skip} for r in expected
    ]
    lead = next(r for r in got if r["position"] == "lead")
    assert lead["pair_id"] == make_pair_id("simplewiki", str(cat.page_id), "Cat_photo.jpg")
    assert lead["image_url"] == wiki.image_url("Cat photo.jpg")  # a local upload, from imageinfo
    assert lead["licence"] == "CC BY-SA 4.0" and lead["attribution"] == "Fake Artist"
    assert lead["retrieved_at"] and lead["url"].startswith(wiki.base_url + "/wiki/Cat")


def test_scrape_category_and_all_with_limit():
    wiki = _wiki()
    with wiki:
        client, _ = _client(wiki)
        _, by_cat = api.scrape(client, category="Animals")
        _, by_all = api.scrape(client, all_pages=True, limit=2)
        with pytest.raises(CmiscError):
            api.scrape(client, titles=["Cat"], all_pages=True)
    assert len(by_cat.fetched) == 6
    assert [p["title"] for p in by_all.fetched] == ["Ant", "Bear"]


@pytest.mark.parametrize("kind", ["429", "503", "500", "timeout", "maxlag", "malformed"])
def test_each_fault_is_retried_then_succeeds(kind):
    wiki = _wiki(faults=[Fault(kind, match="rvprop=ids|timestamp|content", retry_after="7")], timeout_delay=1.0)
    with wiki:
        client, sleeps = _client(wiki, timeout=0.3)
        rows, summary = api.scrape(client, titles=["Cat", "Dog"])
    assert summary.failed == [] and len(summary.fetched) == 2 and len(rows) == 4
    content = _content_requests(wiki)
    assert content[0].fault == kind and content[-1].fault is None and content[-1].status == 200
    if kind in ("429", "503", "maxlag"):
        assert max(sleeps) >= 7  # Retry-After honoured
    else:
        assert sleeps, "a retry waits (backoff) before asking again"


def test_persistent_fault_on_one_page_is_recorded_and_others_are_scraped():
    wiki = _wiki()
    with wiki:
        dog = wiki.page("Dog").page_id
        wiki.add_fault(Fault("503", match=str(dog), count=None))
        client, _ = _client(wiki, batch_size=3, retries=2)
        rows, summary = api.scrape(client, titles=["Cat", "Dog", "Eel"])
    assert [f["page"] for f in summary.failed] == ["Dog"]
    assert summary.failed[0]["reason"].startswith("http-503")
    assert {p["title"] for p in summary.fetched} == {"Cat", "Eel"}
    assert {r["doc_title"] for r in rows} == {"Cat", "Eel"}


def test_persistent_malformed_json_is_recorded():
    wiki = _wiki()
    with wiki:
        eel = wiki.page("Eel").page_id
        wiki.add_fault(Fault("malformed", match=str(eel), count=None))
        client, _ = _client(wiki, batch_size=3, retries=1)
        rows, summary = api.scrape(client, titles=["Cat", "Eel"])
    assert [(f["page"], f["reason"].split(":")[0]) for f in summary.failed] == [("Eel", "malformed-json")]
    assert {r["doc_title"] for r in rows} == {"Cat"}


def test_an_outage_stops_asking_page_by_page():
    wiki = _wiki()
    with wiki:
        client, _ = _client(wiki, batch_size=6, retries=0)
        listed = list(client.latest_revisions(titles=TITLES[:6]))
        wiki.add_fault(Fault("503", match="content", count=None))
        rows, failures = api.fetch_shard(client, listed)
    assert rows == [] and len(failures) == 6
    assert sum("skipped after repeated failures" in f["reason"] for f in failures) == 3
    assert len(_content_requests(wiki)) == 1 + 3  # the batch, then three single pages


def test_malformed_wikitext_never_stops_a_run(monkeypatch):
    from cmisc_model.sources import wikitext

    wiki = _wiki()
    wiki.edit("Bear", "{{{{[[File:X.jpg|thumb|<ref>unclosed [[ == bad\n}}}} ]] <gallery>")
    real = wikitext.page_pairs

    def flaky(title, *a, **kw):
        if title == "Cat":
            raise wikitext.WikitextError("page 'Cat': broken on purpose")
        return real(title, *a, **kw)

    monkeypatch.setattr(wikitext, "page_pairs", flaky)
    with wiki:
        client, _ = _client(wiki)
        rows, summary = api.scrape(client, titles=["Bear", "Cat", "Dog"])
    assert [(f["page"], f["stage"]) for f in summary.failed] == [("Cat", "pairs")]
    assert "broken on purpose" in summary.failed[0]["reason"]
    assert {r["doc_title"] for r in rows} >= {"Dog"}


def test_refresh_fetches_only_the_changed_page():
    wiki = _wiki()
    with wiki:
        client, _ = _client(wiki, batch_size=50)
        first, s1 = api.scrape(client, category="Animals")
        known = s1.revisions()
        new_rev = wiki.edit("Dog", wiki.page("Dog").wikitext.replace("many things", "bones"))
        wiki.reset_log()
        rows, s2 = api.scrape(client, category="Animals", known_revisions=known)
    assert [p["title"] for p in s2.fetched] == ["Dog"] and s2.fetched[0]["revision_id"] == new_rev
    assert len(s2.unchanged) == 5
    content = _content_requests(wiki)
    assert [r.params["pageids"] for r in content] == [str(wiki.page("Dog").page_id)]
    assert {r["doc_title"] for r in rows} == {"Dog"}
    assert any("Dog eats bones." in s for r in rows for b in r["text_blocks"] for s in b["sentences"])
    merged = api.refresh_rows(first, rows, s2)
    assert len(merged) == len(first)
    assert {r["revision_id"] for r in merged if r["doc_title"] == "Dog"} == {new_rev}


def test_html_mode_matches_wikitext_mode():
    for markup in ("figure", "legacy"):
        wiki = _wiki(html_markup=markup)
        with wiki:
            client, _ = _client(wiki)
            from_wikitext, _ = api.scrape(client, titles=["Cat", "Dog"])
            from_html, summary = api.scrape(client, titles=["Cat", "Dog"], html=True)
        assert summary.failed == []
        assert len([r for r in wiki.api_requests() if r.params.get("action") == "parse"]) == 2

        def key(r):
            return (r["pair_id"], r["position"], tuple(r["section_path"]), r["caption"],
                    json.dumps(r["text_blocks"]), r["image_url"], r["licence"], r["revision_id"])

        assert sorted(map(key, from_html)) == sorted(map(key, from_wikitext)), markup


# --------------------------------------------------------------------------- etiquette


def test_user_agent_is_required():
    for ua in ("", "python-requests/2.31", "my scraper"):
        with pytest.raises(CmiscError, match="User-Agent"):
            api.make_client(api.ScrapeConfig(user_agent=ua))
    client = api.make_client(api.ScrapeConfig(user_agent=UA))
    assert client.session.user_agent == UA


def test_endpoint_host_must_be_allowed():
    with pytest.raises(CmiscError, match="allowed_hosts"):
        api.make_client(api.ScrapeConfig(user_agent=UA, endpoint="https://evil.example/w/api.php"))


def test_image_url_on_a_host_not_allowed_is_not_fetched():
    # "localhost" reaches the same fake server, so a fetch would show in its log.
    wiki = FakeWiki(
        [_page("Cat", "Cat photo.jpg")],
        images={"Cat photo.jpg": b"x", "Cat food.jpg": b"y"},
        image_meta={"Cat photo.jpg": {"url": "http://localhost:{port}/images/a/ab/Cat_photo.jpg"}},
    )
    with wiki:
        client, _ = _client(wiki, allowed=("127.0.0.1",))
        rows, _ = api.scrape(client, titles=["Cat"])
        lead = next(r for r in rows if r["position"] == "lead")
        assert lead["image_status"] == "rejected:host-not-allowed"
        with pytest.raises(FetchError) as e:
            client.session.get(lead["image_url"])
        assert e.value.reason == "host-not-allowed"
        section = next(r for r in rows if r["position"] == "section")
        assert section["image_status"] == "missing"
        assert client.session.download(section["image_url"]) == b"y"  # allowed host: fetched
    assert [r.path for r in wiki.requests if r.path.startswith("/images/")] == [
        "/images/" + "/".join(section["image_url"].split("/")[-3:])
    ]


def test_rate_limit_spaces_requests():
    wiki = _wiki()
    with wiki:
        session = PoliteSession(UA, ["127.0.0.1"], rate_per_s=20.0, max_retries=0)
        client = api.MediaWikiClient(session, wiki.endpoint, list_limit=2)
        t0 = time.monotonic()
        client.all_pages()  # 4 requests
        elapsed = time.monotonic() - t0
    assert elapsed >= 3 / 20 - 0.01


# --------------------------------------------------------------------------- CLI


def test_cli_scrape_refresh_and_html(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no params.yaml here: dataclass defaults
    monkeypatch.setattr(api.time, "sleep", lambda s: None)
    out = tmp_path / "pairs.parquet"
    wiki = _wiki()
    with wiki:
        base = ["wiki-scrape", "--out", str(out), "--endpoint", wiki.endpoint, "--user-agent", UA]
        assert cli.main(base + ["--category", "Animals"]) == 0
        table = read_table(out, PAIRS)
        assert table.num_rows == 12
        meta = file_metadata(out)
        assert json.loads(meta["cmisc.scrape_summary"])["failed"] == []
        assert len(json.loads(meta["cmisc.revisions"])) == 6

        wiki.edit("Ant", "No pictures any more. Just text.")
        wiki.reset_log()
        assert cli.main(base + ["--category", "Animals", "--refresh", "--summary", str(tmp_path / "s.json")]) == 0
        summary = json.loads((tmp_path / "s.json").read_text())
        assert [p["title"] for p in summary["fetched"]] == ["Ant"] and len(summary["unchanged"]) == 5
        assert read_table(out, PAIRS).num_rows == 10  # Ant's two pairs are gone, the rest kept
        assert len(_content_requests(wiki)) == 1

        html_out = tmp_path / "html.parquet"
        assert cli.main(["wiki-scrape", "--out", str(html_out), "--endpoint", wiki.endpoint,
                         "--user-agent", UA, "--titles", "Cat", "--html"]) == 0
        assert read_table(html_out, PAIRS).num_rows == 2

    monkeypatch.delenv(api.UA_ENV, raising=False)
    capsys.readouterr()
    assert cli.main(["wiki-scrape", "--out", str(tmp_path / "x.parquet"), "--titles", "Cat"]) == 2
    err = capsys.readouterr().err.strip()
    assert "User-Agent" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.parquet").exists()


# --------------------------------------------------------------------------- real wikitext


def _real_pages(realdata) -> list[FakePage]:
    """The 7 pages of a real 2019 Simple English Wikipedia dump excerpt, as the fake serves them."""
    import bz2
    import xml.etree.ElementTree as ET

    root = ET.fromstring(bz2.decompress((realdata / "wiki" / "simplewiki-2019-7pages.xml.bz2").read_bytes()))
    pages = []
    for page in (e for e in root.iter() if e.tag.endswith("}page")):
        d = {c.tag.split("}")[1]: c for c in page}
        r = {c.tag.split("}")[1]: c for c in d["revision"]}
        pages.append(FakePage(d["title"].text, r["text"].text or "", page_id=int(d["id"].text),
                              revision_id=int(r["id"].text), timestamp=r["timestamp"].text,
                              namespace=int(d["ns"].text)))
    return pages


def test_real_wikitext_through_the_api_gives_the_dump_rows(realdata):
    pages = _real_pages(realdata)
    wiki = FakeWiki(pages)  # no image files: every file is unknown to this wiki
    with wiki:
        client, _ = _client(wiki, batch_size=50, list_limit=500)
        rows, summary = api.scrape(client, all_pages=True)
    articles = [p for p in pages if p.namespace == 0]
    assert summary.listed == len(articles) == 6 and summary.failed == []
    expected = []
    for p in articles:
        expected += page_pairs(p.title, p.page_id, p.wikitext, revision_id=p.revision_id,
                               revision_timestamp=p.timestamp, base_url=client.base_url)
    assert len(rows) == len(expected) >= 5

    def key(r):
        return (r["pair_id"], r["caption"], json.dumps(r["text_blocks"]), r["revision_id"])

    assert sorted(map(key, rows)) == sorted(map(key, expected))
    # Files the wiki does not know keep their Commons URL and stay "missing".
    assert all(r["image_url"].startswith("https://upload.wikimedia.org/") for r in rows)
    assert all(r["image_status"] == "missing" for r in rows)


def test_fetch_shard_takes_page_ids_or_titles():
    wiki = _wiki()
    with wiki:
        client, _ = _client(wiki, batch_size=50)
        ids = [wiki.page(t).page_id for t in ("Ant", "Bear")]
        by_id, f1 = api.fetch_shard(client, ids)
        by_title, f2 = api.fetch_shard(client, ["Ant", "Bear", "Nope"])
        by_html, f3 = api.fetch_shard(client, ids, html=True)
    assert f1 == [] and f3 == []
    assert [(f["page"], f["reason"].split(":")[0]) for f in f2] == [("Nope", "missing")]
    def pick(rows):
        return sorted((r["pair_id"], r["caption"], r["image_url"]) for r in rows)

    assert pick(by_id) == pick(by_title) == pick(by_html) and len(by_id) == 4


def test_a_failing_batch_does_not_lose_the_other_batches_of_a_shard():
    wiki = _wiki()
    with wiki:
        client, _ = _client(wiki, batch_size=3, retries=0)
        ids = [wiki.page(t).page_id for t in TITLES[:6]]
        wiki.add_fault(Fault("503", match=str(ids[4]), count=None))
        rows, failures = api.fetch_shard(client, ids)
    assert [f["page_id"] for f in failures] == [ids[4]]
    assert sorted({int(r["doc_id"]) for r in rows}) == ids[:4] + ids[5:]
    # first batch once, second batch once, then its three pages one by one
    assert len(_content_requests(wiki)) == 1 + 1 + 3


# --------------------------------------------------------------------------- summaries, failures and resumption


def test_summary_counts_every_request_sent_retries_included():
    wiki = _wiki()
    with wiki:
        wiki.add_fault(Fault("503", match="prop=revisions", count=3))
        wiki.add_fault(Fault("500", match="prop=imageinfo", count=2))
        client, _ = _client(wiki, batch_size=3, retries=3)
        _, summary = api.scrape(client, titles=["Cat", "Dog", "Eel"])
        sent = len(wiki.api_requests())
    assert summary.failed == [] and sent > 5
    assert summary.requests == sent


def test_cli_every_page_failed_is_non_zero_and_keeps_the_output(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(api.time, "sleep", lambda s: None)
    out = tmp_path / "pairs.parquet"
    wiki = _wiki()
    with wiki:
        base = ["wiki-scrape", "--out", str(out), "--endpoint", wiki.endpoint, "--user-agent", UA]
        assert cli.main(base + ["--titles", "Cat"]) == 0
        before = out.read_bytes()
        wiki.add_fault(Fault("500", match="rvprop=ids|timestamp|content", count=None))
        capsys.readouterr()
        assert cli.main(base + ["--titles", "Cat", "Dog"]) == api.EXIT_ALL_FAILED != 0
    err = capsys.readouterr().err
    assert "every page failed" in err and "Dog" in err
    assert out.read_bytes() == before


def test_killed_scrape_resumes_from_its_finished_shards(tmp_path):
    """SIGKILL mid-way: the rerun fetches only the pages not yet done, and
    removes the temporary files the killed run left."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"scrape": {"allowed_hosts": ["127.0.0.1"], "rate_per_s": 6.0,
                                             "batch_size": 1, "user_agent": UA}}))
    out = tmp_path / "pairs.parquet"
    parts = tmp_path / ".pairs.parquet.parts"
    wiki = _wiki()
    with wiki:
        cmd = [sys.executable, "-m", "cmisc_model", "wiki-scrape", "--out", str(out), "--endpoint",
               wiki.endpoint, "--all", "--params", str(params)]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while len(list(parts.glob("part-*.parquet"))) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = len(list(parts.glob("part-*.parquet")))
        assert 3 <= done < len(TITLES) and not out.exists()
        (tmp_path / ".pairs.parquet.x1y2z3.tmp").write_bytes(b"half a file")  # as a kill mid-write leaves
        wiki.reset_log()
        assert cli.main(["wiki-scrape", "--out", str(out), "--endpoint", wiki.endpoint, "--all",
                         "--params", str(params)]) == 0
        refetched = {r.params.get("pageids") for r in _content_requests(wiki)}
    assert len(refetched) <= len(TITLES) - done + 1  # at most the shard that was cut off
    rows = read_table(out, PAIRS).to_pylist()
    assert len(rows) == 2 * len(TITLES) == len({r["pair_id"] for r in rows})
    assert json.loads(file_metadata(out)["cmisc.scrape_summary"])["fetched"] == len(TITLES)
    assert not list(tmp_path.glob(".pairs.parquet.*.tmp")) and not parts.exists()


def test_scrape_summary_counts_dropped_templates_and_images_without_text():
    wiki = FakeWiki([FakePage("Owl", "[[File:Owl.jpg|thumb|An owl.]]\n'''Owls''' hunt at night.{{citation needed}}\n"
                              "{{convert|30|cm|in}} long.\n== Pictures ==\n[[File:Owl2.jpg|thumb|Another.]]\n")])
    with wiki:
        client, _ = _client(wiki)
        rows, summary = api.scrape(client, titles=["Owl"])
    assert [r["caption"] for r in rows] == ["An owl."]
    assert "30 cm long." in rows[0]["text_blocks"][0]["sentences"]
    assert summary.left_out["templates_dropped"] == 1 and summary.left_out["templates_rendered"] == 1
    assert summary.left_out["templates_dropped_top"] == {"citation needed": 1}
    assert summary.left_out["images_without_text"] == 1
    assert "templates dropped 1, images in sections without text 1" in summary.line()
