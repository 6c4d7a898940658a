"""Prefect tasks over the MediaWiki Action API: list pages, fetch shards of pages."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import timedelta

from prefect import task

from cmisc_model.sources.mediawiki_api import ApiPage, ScrapeConfig, fetch_shard, make_client
from cmisc_model.sources.wikitext import WikitextOptions

FETCH_VERSION = "1"  # bump when the page -> pairs rules change


@task(name="list-pages", retries=3, retry_delay_seconds=[5, 30, 120], retry_jitter_factor=0.5)
def list_pages(
    cfg: ScrapeConfig, titles: list[str] | None, category: str | None, all_pages: bool, limit: int | None
) -> list[ApiPage]:
    """The chosen pages with their latest revision ids (cheap: ids only, 50 a request)."""
    client = make_client(cfg)
    if titles:
        return list(client.latest_revisions(titles=titles[:limit] if limit else titles))
    members = client.category_members(category, limit=limit) if category else client.all_pages(limit=limit)
    return list(client.latest_revisions(pageids=[p.page_id for p in members]))


def fetch_key(pages: list[ApiPage], endpoint: str, html: bool, options: WikitextOptions) -> str:
    """Cache key: the shard's (page id, revision id) list plus how pairs are made.
    A page whose revision is unchanged is never fetched twice, even when the
    previous output is gone."""
    ident = [(p.page_id, p.revision_id) for p in pages]
    blob = json.dumps([FETCH_VERSION, endpoint, html, ident, asdict(options)], sort_keys=True)
    return "fetch-pages-" + hashlib.sha256(blob.encode()).hexdigest()[:32]


@task(
    name="fetch-pages",
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_jitter_factor=0.5,
    cache_key_fn=lambda ctx, p: fetch_key(p["pages"], p["cfg"].endpoint, p["html"], p["options"]),
    cache_expiration=timedelta(days=90),
    persist_result=True,
    task_run_name="fetch-pages-{label}",
)
def fetch_pages(
    cfg: ScrapeConfig, pages: list[ApiPage], html: bool, options: WikitextOptions, label: str = ""
) -> tuple[list[dict], list[dict]]:
    """(pair rows, failures) of a shard; a failing page never fails the shard."""
    return fetch_shard(make_client(cfg), pages, html=html, options=options)
