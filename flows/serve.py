"""Serve the scheduled corpus refresh: ``python -m flows.serve``.

Registers the ``simplewiki-refresh/weekly-serve`` deployment (cron from
``--cron``, default Mondays 03:00 UTC) on the Prefect server named by
``PREFECT_API_URL`` and runs its flow runs in subprocesses until stopped.
Scheduling needs a real server (``prefect server start``); Prefect refuses
to schedule on its ephemeral one.

``prefect.yaml`` declares the same flow and schedule for ``prefect deploy``
with a process work pool, as ``simplewiki-refresh/weekly-pool``: a distinct
name, so serving and deploying never overwrite each other's deployment. This
entry point needs no work pool or worker.
"""

from __future__ import annotations

import os

from prefect import serve

from cmisc_model.commands import command_parser
from flows.common import run_cli
from flows.refresh import simplewiki_refresh

WEEKLY = "0 3 * * 1"
NAME = "weekly-serve"  # prefect.yaml's is weekly-pool


def main(argv: list[str]) -> int:
    parser = command_parser("python -m flows.serve", __doc__)
    parser.add_argument("--name", default=NAME, help="deployment name: simplewiki-refresh/NAME")
    parser.add_argument("--cron", default=WEEKLY, help="schedule (cron, UTC)")
    parser.add_argument("--out", default="data/refresh/simplewiki.parquet", help="pairs Parquet the refresh updates")
    parser.add_argument("--store", default="data/images/refresh", help="image store folder")
    parser.add_argument("--titles", nargs="+", help="refresh only these pages")
    parser.add_argument("--category", help="refresh only the pages of this category")
    parser.add_argument("--limit", type=int, help="at most this many pages")
    parser.add_argument("--endpoint", help="api.php URL (default: params scrape.endpoint)")
    parser.add_argument("--user-agent", help="User-Agent with contact, as Wikimedia requires "
                        "(default: CMISC_USER_AGENT or params)")
    parser.add_argument("--params", default="params.yaml", help="params file")
    args = parser.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        raise SystemExit(
            "flows.serve needs a Prefect server: run `prefect server start`, then "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    parameters = {
        "out": os.path.abspath(args.out),
        "store": os.path.abspath(args.store),
        "titles": args.titles,
        "category": args.category,
        "all_pages": not (args.titles or args.category),
        "limit": args.limit,
        "endpoint": args.endpoint,
        "user_agent": args.user_agent,
        "params": os.path.abspath(args.params),
    }
    deployment = simplewiki_refresh.to_deployment(
        name=args.name,
        cron=args.cron,
        parameters=parameters,
        description="Weekly refresh of the Simple English Wikipedia pairs (changed pages only).",
        tags=["cmisc", "refresh"],
    )
    serve(deployment, pause_on_shutdown=False)
    return 0


if __name__ == "__main__":
    run_cli(main)
