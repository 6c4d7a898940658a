"""Prefect flows on the tiny sample world and the real dump files.

These run real flows against the session's one Prefect test server.
"""

from __future__ import annotations

import json

import pytest

from cmisc_model import schemas as S
from cmisc_model.sources.wiki_dump import DumpTruncatedError

pytestmark = pytest.mark.usefixtures("prefect")


def dump_of(world):
    return str(world / "simplewiki" / "simplewiki-sample-pages-articles.xml.bz2")


def test_simplewiki_flow_pairs_images_and_summary(tiny_world, tmp_path):
    from prefect.artifacts import Artifact

    from flows.simplewiki import simplewiki_pairs

    out = tmp_path / "wiki.parquet"
    summary = simplewiki_pairs(
        dump_of(tiny_world), str(out), str(tmp_path / "store"), [str(tiny_world / "simplewiki" / "images")], shard_size=3
    )
    table = S.read_table(out, S.PAIRS)
    assert table.num_rows == summary["pairs"] > 0
    assert set(table.column("image_status").to_pylist()) == {"ok"}
    assert all((tmp_path / "store").glob("*/*.jpg"))
    assert summary["images"]["ok"] == table.num_rows
    artifact = Artifact.get("simplewiki-summary")
    assert artifact is not None and artifact.type == "table"
    assert {"metric": "pairs", "value": table.num_rows} in json.loads(artifact.data)


def test_simplewiki_flow_resumes_from_cached_shards(tiny_world, tmp_path, monkeypatch):
    """A second run (after a crash, or a refresh with no new revisions) parses nothing again."""
    import tasks.wiki
    from flows.simplewiki import simplewiki_pairs

    calls = []
    real = tasks.wiki.pages_to_pairs
    monkeypatch.setattr(tasks.wiki, "pages_to_pairs", lambda *a, **k: calls.append(1) or real(*a, **k))
    args = (dump_of(tiny_world), str(tmp_path / "a.parquet"), str(tmp_path / "store"),
            [str(tiny_world / "simplewiki" / "images")])
    first = simplewiki_pairs(*args, shard_size=4)
    n_first = len(calls)
    assert n_first >= 2
    second = simplewiki_pairs(*args, shard_size=4)
    assert len(calls) == n_first  # every shard came from the cache
    assert second["pairs"] == first["pairs"]
    assert first["images"]["written"] > 0 and second["images"]["written"] == 0  # nothing stored twice


def test_truncated_dump_writes_complete_pages_then_fails(realdata, tmp_path):
    from flows.simplewiki import simplewiki_pairs

    out = tmp_path / "t.parquet"
    with pytest.raises(DumpTruncatedError, match="last complete page"):
        simplewiki_pairs(str(realdata / "wiki" / "simplewiki-2023-truncated.xml"), str(out), str(tmp_path / "s"))
    assert S.file_metadata(out)["cmisc.incomplete"] == "true"
    table = S.read_table(out, S.PAIRS)
    assert table.num_rows > 0 and set(table.column("image_status").to_pylist()) == {"missing"}



def test_simplewiki_flow_on_a_non_dump_keeps_the_previous_output(tiny_world, tmp_path):
    """Empty, text or gzipped-JSON input: an error naming the file, --out untouched."""
    import gzip

    from cmisc_model.errors import CmiscError
    from flows.simplewiki import simplewiki_pairs

    out = tmp_path / "wiki.parquet"
    simplewiki_pairs(dump_of(tiny_world), str(out), str(tmp_path / "store"), shard_size=50)
    before = out.read_bytes()
    bad = [tmp_path / "empty.xml.bz2", tmp_path / "notes.xml", tmp_path / "data.xml.gz"]
    bad[0].write_bytes(b"")
    bad[1].write_text("plain text\n")
    bad[2].write_bytes(gzip.compress(b'{"x": 1}'))
    for path in bad:
        with pytest.raises(CmiscError, match=path.name):
            simplewiki_pairs(str(path), str(out), str(tmp_path / "store"))
        assert out.read_bytes() == before


def test_corpus_flows_on_tiny_world(tiny_world, tmp_path):
    from flows.corpus import bbc_flow, coco_flow, corpus_flow, vocab_flow
    from flows.simplewiki import simplewiki_pairs

    w, o = tiny_world, tmp_path
    simplewiki_pairs(dump_of(w), str(o / "wiki.parquet"), str(o / "img"), [str(w / "simplewiki" / "images")])
    bbc = bbc_flow(str(w / "bbc"), str(o / "bbc.parquet"), str(o / "img"))
    assert bbc["spelling"]["replacements"] > 0
    coco = coco_flow(str(w / "coco" / "annotations" / "captions_train2017.json"), str(w / "coco" / "train2017"),
                     str(o / "coco.parquet"), str(o / "coco_l.parquet"), str(o / "coco_a.parquet"), str(o / "img"))
    assert coco["images"]["ok"] > 0
    summary = corpus_flow([str(o / p) for p in ("wiki.parquet", "bbc.parquet", "coco.parquet")],
                          [str(w / "annotations.jsonl"), str(o / "coco_a.parquet")], str(o / "corpus"),
                          [str(o / "coco_l.parquet")])
    assert summary["annotation_problems"] == []
    counts = json.loads((w / "manifest.json").read_text())["counts"]
    assert summary["pairs"] == counts["pairs_total"]
    # the sample world's labelled wiki/BBC pairs plus COCO's subset, all found
    assert summary["labelled"] == counts["labelled"] + S.read_table(o / "coco_a.parquet", S.ANNOTATIONS).num_rows
    metrics = vocab_flow(str(o / "corpus" / "corpus.parquet"), str(o / "vocab"))
    assert metrics["vocab_size"] > 10


def test_flow_on_a_local_dask_cluster(tiny_world, tmp_path):
    pytest.importorskip("prefect_dask")
    from distributed import LocalCluster

    from flows.common import task_runner
    from flows.simplewiki import simplewiki_pairs

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        run = simplewiki_pairs.with_options(task_runner=task_runner(cluster.scheduler_address))
        summary = run(dump_of(tiny_world), str(tmp_path / "d.parquet"), str(tmp_path / "s"),
                      [str(tiny_world / "simplewiki" / "images")], shard_size=3)
    assert S.read_table(tmp_path / "d.parquet", S.PAIRS).num_rows == summary["pairs"] > 0


def test_simplewiki_cli_rejects_a_non_dump_before_prefect_starts(tmp_path, monkeypatch):
    import flows.simplewiki
    from cmisc_model.errors import CmiscError
    from flows.simplewiki import main

    monkeypatch.setattr(flows.simplewiki, "simplewiki_pairs", None)  # any flow run would fail differently
    bad = tmp_path / "notes.xml.bz2"
    bad.write_bytes(b"not a dump")
    with pytest.raises(CmiscError, match="notes.xml.bz2: not a MediaWiki XML export"):
        main(["--dump", str(bad), "--out", str(tmp_path / "o.parquet"), "--store", str(tmp_path / "s")])
    assert not (tmp_path / "o.parquet").exists()
