"""Prefect tasks over shards of Wikipedia pages (never one task per page)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import timedelta

from prefect import task

from cmisc_model.sources.wiki_dump import DumpPage, SiteInfo, pages_to_pairs
from cmisc_model.sources.wikitext import WikitextOptions
from tasks.scrape import retry_unless_handled

# Bump when the wikitext -> pairs rules change, so cached shards are recomputed.
PARSER_VERSION = "2"


def shard_key(pages: list[DumpPage], options: WikitextOptions, extra: str = "") -> str:
    """A shard's identity: its (page id, revision id) list and the parsing options.

    A refresh or a resumed run therefore reuses every shard whose pages did not
    change, and recomputes only shards holding a new revision.
    """
    ident = [(p.page_id, p.revision_id) for p in pages]
    blob = json.dumps([PARSER_VERSION, ident, asdict(options), extra], sort_keys=True, default=str)
    return "wiki-shard-" + hashlib.sha256(blob.encode()).hexdigest()[:32]


@task(
    name="parse-pages",
    retries=1,  # a crashed worker; bad pages are skipped with their reason, never retried
    retry_condition_fn=retry_unless_handled,
    # Page ids repeat across wikis: the wiki (its dbname and URL) is part of the key.
    cache_key_fn=lambda ctx, p: shard_key(
        p["pages"], p["options"], f"{p.get('dump_date') or ''}|{p['site'].source}|{p['site'].base_url}"
    ),
    cache_expiration=timedelta(days=90),
    persist_result=True,
    task_run_name="parse-pages-{label}",
)
def parse_shard(
    pages: list[DumpPage], options: WikitextOptions, site: SiteInfo, dump_date: str | None, label: str = ""
) -> tuple[list[dict], list[dict], dict]:
    """(pair rows, skipped pages with reasons, counts of what was left out) of one shard."""
    stats: dict = {}
    rows, skipped = pages_to_pairs(pages, options, site, dump_date, stats)
    return rows, skipped, stats
