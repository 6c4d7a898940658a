"""Serve the scheduled corpus refresh: ``python -m flows.serve``.

Registers the ``simplewiki-refresh/weekly`` deployment (cron from
``--cron``, default Mondays 03:00 UTC) on the Prefect server named by
``PREFECT_API_URL`` and runs its flow runs in subprocesses until stopped.
Scheduling needs a real server (``prefect server start``); Prefect refuses
to schedule on its ephemeral one.

The same deployment is declared in ``prefect.yaml`` for ``prefect deploy``
with a process work pool; this entry point needs no work pool or worker.
"""

from __future__ import annotations

import argparse
import os

from prefect import serve

from flows.common import run_cli
from flows.refresh import simplewiki_refresh

WEEKLY = "0 3 * * 1"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="weekly", help="deployment name")
    parser.add_argument("--cron", default=WEEKLY, help="schedule (cron, UTC)")
    parser.add_argument("--out", default="data/refresh/simplewiki.parquet")
    parser.add_argument("--store", default="data/images/refresh")
    parser.add_argument("--titles", nargs="+")
    parser.add_argument("--category")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--endpoint")
    parser.add_argument("--user-agent")
    parser.add_argument("--params", default="params.yaml")
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
