"""Flow: a Simple English Wikipedia dump -> image–text pairs with stored images.

``python -m flows.simplewiki --dump DUMP --out PAIRS.parquet --store DIR
[--image-root DIR] [--fetch] [--shard-size N] [--dask tcp://host:8786]``

The dump is streamed in the flow; each shard of pages is one ``parse-pages``
task (cached on the shard's (page id, revision id) list, so a run killed
half-way resumes with the shards it finished, and a refresh recomputes only
shards with new revisions); then each shard of rows is one ``store-images``
task. Artifacts: a progress bar while it runs, and the summary table (pages
seen, pairs, images ok / missing / rejected by reason) at the end.

A truncated dump still writes the pairs of its complete pages (marked
``cmisc.incomplete``), then fails with the error naming the last complete page.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import flow, get_run_logger

from cmisc_model import schemas as S
from cmisc_model.config import load_section
from cmisc_model.corpus.images import ImagesConfig
from cmisc_model.sources.wiki_dump import (
    DumpTruncatedError,
    SiteInfo,
    dump_date_from_name,
    iter_page_shards,
    read_siteinfo,
)
from cmisc_model.sources.wikitext import WikitextOptions, merge_stats, stats_summary
from flows.common import Progress, run_cli, store_images, summary_table, task_runner
from tasks.wiki import parse_shard


@flow(name="simplewiki-pairs", log_prints=True)
def simplewiki_pairs(
    dump: str,
    out: str,
    store: str,
    image_roots: list[str] | None = None,
    fetch: bool = False,
    shard_size: int = 200,
    params: str = "params.yaml",
) -> dict:
    options = load_section(WikitextOptions, "simplewiki", params)
    images_cfg = load_section(ImagesConfig, "images", params)
    try:
        site = read_siteinfo(dump)
    except DumpTruncatedError:
        site = SiteInfo()  # broken before </siteinfo> ends: the default namespaces; the pages loop reports it
    S.remove_stale_temps(out)  # .OUT.*.tmp left by a killed run
    dump_date = dump_date_from_name(dump)
    progress = Progress(f"Parsing {Path(dump).name}")

    # Parse: the reader streams in this process, shards go to the task runner.
    futures, error = [], None
    try:
        for i, pages in enumerate(iter_page_shards(dump, shard_size)):
            futures.append(parse_shard.submit(pages, options, site, dump_date, label=str(i)))
    except DumpTruncatedError as e:
        if not futures:
            raise  # not a single page: the previous output stays as it was
        error = e
    rows, skipped, stats = [], [], {}
    for i, f in enumerate(futures):
        r, s, counts = f.result()
        rows += r
        skipped += s
        merge_stats(stats, counts)
        progress.update(0.5 * (i + 1) / len(futures))

    stored, images_summary = store_images(
        rows, store, images_cfg, progress, local_roots=image_roots, fetch=fetch, label="wiki", start=0.5
    )

    meta = {"cmisc.source": site.source, "cmisc.dump": Path(dump).name}
    if error is not None:
        meta.update({"cmisc.incomplete": "true", "cmisc.incomplete_reason": str(error)})
    S.write_table(S.from_rows(stored, S.PAIRS, out), out, S.PAIRS, metadata=meta)
    summary = {
        "dump": str(dump),
        "pairs": len(stored),
        "pages_with_pairs": len({r["doc_id"] for r in stored}),
        "pages_skipped": len(skipped),
        "skipped": [f"{s['title']}: {s['reason']}" for s in skipped],
        "images": images_summary,
        **stats_summary(stats),
        "incomplete": error is not None,
    }
    summary_table("simplewiki-summary", summary, f"Pairs from {Path(dump).name}")
    get_run_logger().info(
        "%s: %d pairs from %d pages; %d pages skipped, %d templates dropped, %d images in sections without text",
        out, summary["pairs"], summary["pages_with_pairs"], summary["pages_skipped"], summary["templates_dropped"],
        summary["images_without_text"],
    )
    progress.update(1.0)
    if error is not None:
        raise error
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.simplewiki", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dump", required=True, help="MediaWiki XML export (.xml or .xml.bz2)")
    parser.add_argument("--out", required=True, help="pairs Parquet to write")
    parser.add_argument("--store", required=True, help="content-addressed image store folder")
    parser.add_argument("--image-root", action="append", default=[], help="local folder laid out like upload.wikimedia.org")
    parser.add_argument(
        "--fetch", nargs="?", const="true", default="false", type=lambda v: v.lower() in ("1", "true", "yes"),
        help="download images not found locally (needs images.user_agent); also --fetch true|false",
    )
    parser.add_argument("--shard-size", type=int, default=200, help="pages per parse task")
    parser.add_argument("--workers", type=int, default=2, help="threads of the task runner")
    parser.add_argument("--dask", metavar="ADDRESS", help="run tasks on this Dask scheduler")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    # Bad params or a file that is not a dump fail in one line before Prefect starts.
    load_section(WikitextOptions, "simplewiki", args.params)
    load_section(ImagesConfig, "images", args.params)
    try:
        read_siteinfo(args.dump)
    except DumpTruncatedError:
        pass  # a dump cut short: the flow writes its complete pages, then fails
    run = simplewiki_pairs.with_options(task_runner=task_runner(args.dask, args.workers))
    summary = run(args.dump, args.out, args.store, args.image_root, args.fetch, args.shard_size, args.params)
    img = summary["images"]
    print(
        f"{args.out}: {summary['pairs']} pairs from {summary['pages_with_pairs']} pages; images ok {img.get('ok', 0)}, "
        f"missing {img.get('missing', 0)}, rejected {sum(img.get('rejected', {}).values())}; "
        f"{summary['pages_skipped']} pages skipped; templates dropped {summary['templates_dropped']}, "
        f"images in sections without text {summary['images_without_text']}"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
