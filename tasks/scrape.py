"""Prefect tasks over the MediaWiki Action API: list pages, fetch shards of pages.

One retry layer per failure kind:

- HTTP faults (429, 5xx, timeouts, maxlag) are retried by ``PoliteSession``
  with back-off; a task never retries them again on top.
- Bad configuration or input (``CmiscError``: no User-Agent, a host not
  allowed, a request that failed for good) is never retried
  (``retry_condition_fn``): retrying cannot fix it.
- A page that fails is retried by the next run: its revision is not recorded,
  and a shard with failures is never cached.
- Task retries are left for the rest: an unexpected crash of a worker.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import timedelta

from prefect import task
from prefect.transactions import get_transaction

from cmisc_model.errors import USER_ERRORS
from cmisc_model.sources.mediawiki_api import ApiPage, ScrapeConfig, fetch_shard, make_client
from cmisc_model.sources.wikitext import WikitextOptions
from tasks.limits import prefect_rate_limiter

FETCH_VERSION = "3"  # bump when the page -> pairs rules change


def retry_unless_handled(task, task_run, state) -> bool:
    """Retry a task only for errors no other layer handles (``retry_condition_fn``).

    Configuration and input errors, and HTTP failures that already went
    through the session's retries, end the task at once.
    """
    try:
        state.result()
    except USER_ERRORS:
        return False
    except Exception:  # noqa: BLE001 - anything else is worth another try
        return True
    return True


@task(name="list-pages", retries=2, retry_delay_seconds=[5, 30], retry_jitter_factor=0.5,
      retry_condition_fn=retry_unless_handled)
def list_pages(
    cfg: ScrapeConfig, titles: list[str] | None, category: str | None, all_pages: bool, limit: int | None
) -> list[ApiPage]:
    """The chosen pages with their latest revision ids (cheap: ids only, 50 a request)."""
    client = make_client(cfg, before_request=prefect_rate_limiter())
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
    retry_condition_fn=retry_unless_handled,
    cache_key_fn=lambda ctx, p: fetch_key(p["pages"], p["cfg"].endpoint, p["html"], p["options"]),
    cache_expiration=timedelta(days=90),
    persist_result=True,
    task_run_name="fetch-pages-{label}",
)
def fetch_pages(
    cfg: ScrapeConfig, pages: list[ApiPage], html: bool, options: WikitextOptions, label: str = ""
) -> tuple[list[dict], list[dict], dict]:
    """(pair rows, failures, counts of what was left out) of a shard; a failing
    page never fails the shard.

    Only a shard without failures is cached: a failure cached as a result
    would be replayed for 90 days instead of retried by the next run.
    """
    stats: dict = {}
    rows, failures = fetch_shard(make_client(cfg, before_request=prefect_rate_limiter()), pages,
                                 html=html, options=options, stats=stats)
    if failures:
        txn = get_transaction()  # the task run's own transaction: no cache record on commit
        if txn is not None:
            txn.write_on_commit = False
    return rows, failures, stats
