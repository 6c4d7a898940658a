"""Flow: keep the Simple English Wikipedia pairs fresh through the Action API.

``python -m flows.refresh --out PAIRS.parquet --store DIR (--titles … |
--category NAME | --all) [--endpoint URL] [--user-agent UA]``

Each run lists the pages with their latest revision ids (one cheap request per
50 pages), fetches only pages whose revision differs from the one recorded in
the previous output (tasks over shards of 50 pages, cached on (page id,
revision id)), replaces those pages' pairs, drops deleted pages, keeps the
rest, and stores the new images. A page that fails keeps its previous pairs
and revision, and a shard with failures is not cached, so the next run
fetches it again. Artifacts: progress while it runs, the summary table at the
end.

The configuration (User-Agent, endpoint host, params) is checked before any
task runs, and a bad one is never retried; HTTP faults are retried by the
HTTP client only. Every request to a host takes a slot of that host's Prefect
global rate limit (``tasks/limits.py``), so ``scrape.rate_per_s`` holds across
task threads and Dask workers.

Scheduled as a deployment (weekly) by ``prefect.yaml`` or ``python -m
flows.serve``; both need a Prefect server (``prefect server start``).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from prefect import flow, get_run_logger

from cmisc_model import schemas as S
from cmisc_model.config import load_section
from cmisc_model.corpus.images import ImagesConfig
from cmisc_model.sources.mediawiki_api import (
    UA_ENV,
    ScrapeConfig,
    known_revisions_of,
    make_client,
)
from cmisc_model.sources.wikitext import WikitextOptions, merge_stats, stats_summary
from flows.common import Progress, run_cli, store_images, summary_table, task_runner
from tasks.limits import ensure_rate_limits
from tasks.scrape import fetch_pages, list_pages


def scrape_config(params: str, endpoint: str | None, user_agent: str | None) -> ScrapeConfig:
    cfg = load_section(ScrapeConfig, "scrape", params)
    if endpoint:
        host = (urlsplit(endpoint).hostname or "").lower()
        # Naming an endpoint configures its host, as `cmisc wiki-scrape --endpoint` does.
        cfg = replace(cfg, endpoint=endpoint, allowed_hosts=sorted({*cfg.allowed_hosts, host}))
    return replace(cfg, user_agent=user_agent or os.environ.get(UA_ENV) or cfg.user_agent)


def check_config(params: str, endpoint: str | None, user_agent: str | None):
    """(scrape config, pairing options, images config), or ``CmiscError`` naming
    what to fix. Cheap and offline: runs before any task, and in ``main``
    before the flow starts, so a bad setting costs no request and no retry."""
    cfg = scrape_config(params, endpoint, user_agent)
    make_client(cfg).session.close()  # User-Agent with contact, endpoint host allowed
    options = load_section(WikitextOptions, "simplewiki", params)
    images_cfg = load_section(ImagesConfig, "images", params)
    images_cfg = replace(
        images_cfg, user_agent=cfg.user_agent, allowed_hosts=sorted({*images_cfg.allowed_hosts, *cfg.allowed_hosts})
    )
    return cfg, options, images_cfg


@flow(name="simplewiki-refresh", log_prints=True)
def simplewiki_refresh(
    out: str,
    store: str,
    titles: list[str] | None = None,
    category: str | None = None,
    all_pages: bool = False,
    limit: int | None = None,
    endpoint: str | None = None,
    user_agent: str | None = None,
    html: bool = False,
    fetch_images: bool = True,
    params: str = "params.yaml",
) -> dict:
    cfg, options, images_cfg = check_config(params, endpoint, user_agent)
    api_host = urlsplit(cfg.endpoint).netloc
    ensure_rate_limits({**{h: images_cfg.rate_per_s for h in images_cfg.allowed_hosts}, api_host: cfg.rate_per_s})
    S.remove_stale_temps(out)  # .OUT.*.tmp left by a killed run
    known, old_rows = known_revisions_of(out) if Path(out).exists() else ({}, [])
    progress = Progress(f"Refreshing {out} from {cfg.endpoint}")

    listed = list_pages(cfg, titles, category, all_pages, limit)
    missing = [p for p in listed if p.missing]
    changed = [p for p in listed if not p.missing and known.get(int(p.page_id)) != p.revision_id]
    shards = [changed[i : i + cfg.batch_size] for i in range(0, len(changed), cfg.batch_size)]
    futures = [fetch_pages.submit(cfg, s, html, options, label=str(i)) for i, s in enumerate(shards)]
    new_rows, failures, stats = [], [], {}
    for i, f in enumerate(futures):
        r, fails, counts = f.result()
        new_rows += r
        failures += fails
        merge_stats(stats, counts)
        progress.update(0.6 * (i + 1) / len(futures))

    stored, images_summary = store_images(
        new_rows, store, images_cfg, progress, fetch=fetch_images, label="refresh", start=0.6
    )

    failed_ids = {f.get("page_id") for f in failures}
    refreshed = {int(p.page_id) for p in changed if p.page_id not in failed_ids}
    gone = {p.title for p in missing}
    kept = [r for r in old_rows if int(r["doc_id"]) not in refreshed and r.get("doc_title") not in gone]
    rows = kept + stored
    revisions = {**known, **{int(p.page_id): p.revision_id for p in changed if int(p.page_id) in refreshed}}
    summary = {
        "endpoint": cfg.endpoint,
        "pages_listed": len(listed),
        "pages_fetched": len(refreshed),
        "pages_unchanged": len(listed) - len(changed) - len(missing),
        "pages_missing": len(missing),
        "pages_failed": len({f.get("page_id") for f in failures}),
        "failures": [f"{f.get('page')} ({f.get('stage')}): {f.get('reason')}" for f in failures],
        "pairs": len(rows),
        "pairs_new": len(stored),
        "images": images_summary,
        **stats_summary(stats),
    }
    meta = {
        "cmisc.source": "mediawiki-api" + ("+html" if html else ""),
        "cmisc.endpoint": cfg.endpoint,
        "cmisc.retrieved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cmisc.revisions": json.dumps({str(k): v for k, v in sorted(revisions.items())}),
        "cmisc.incomplete": "true" if failures else "false",
    }
    S.write_table(S.from_rows(rows, S.PAIRS, out), out, S.PAIRS, metadata=meta)
    summary_table("simplewiki-refresh-summary", summary, f"Refresh of {out}")
    get_run_logger().info(
        "%s: %d pairs; pages fetched %d, unchanged %d, missing %d, failed %d", out, summary["pairs"],
        summary["pages_fetched"], summary["pages_unchanged"], summary["pages_missing"], summary["pages_failed"],
    )
    progress.update(1.0)
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.refresh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--store", required=True)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--titles", nargs="+")
    which.add_argument("--category")
    which.add_argument("--all", action="store_true")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--endpoint")
    parser.add_argument("--user-agent", help=f"or ${UA_ENV}, or params scrape.user_agent")
    parser.add_argument("--html", action="store_true", help="extract from action=parse HTML")
    parser.add_argument("--no-images", action="store_true", help="do not download images")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dask", metavar="ADDRESS")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    check_config(args.params, args.endpoint, args.user_agent)  # fails in one line, before Prefect starts
    run = simplewiki_refresh.with_options(task_runner=task_runner(args.dask, args.workers))
    s = run(
        args.out, args.store, args.titles, args.category, args.all, args.limit, args.endpoint,
        args.user_agent, args.html, not args.no_images, args.params,
    )
    print(
        f"{args.out}: {s['pairs']} pairs; pages fetched {s['pages_fetched']}, unchanged {s['pages_unchanged']}, "
        f"missing {s['pages_missing']}, failed {s['pages_failed']}"
    )
    # Every page failed (an outage): non-zero, as `cmisc wiki-scrape` does; the
    # previous pairs were kept and the pages are retried next run.
    return 1 if s["pages_failed"] and not s["pages_fetched"] else 0


if __name__ == "__main__":
    run_cli(main)
