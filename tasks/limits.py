"""One request rate per host across every task, thread, process and Dask worker.

Each process already shares one limiter per host between its sessions
(``cmisc_model.sources.http.shared_limiter``), which covers the thread-pool runner.
Tasks on a Dask cluster run in other processes, often on other machines, so
the flows also declare a Prefect global concurrency limit per host with slot
decay (a rate limit, kept by the Prefect server that every worker already
talks to), and each request first takes a slot of it (``rate_limit``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from prefect.concurrency.sync import rate_limit


def limit_name(netloc: str) -> str:
    """``cmisc-rate-simple.wikipedia.org`` (a port becomes ``-8080``)."""
    return "cmisc-rate-" + netloc.lower().replace(":", "-")


def ensure_rate_limits(rates: dict[str, float]) -> list[str]:
    """Create (or update) the global rate limit of each ``host[:port]`` (or URL)
    at its requests per second; returns the limit names.

    Limit 1 with ``rate`` slots decaying per second: at most one request
    starts every ``1 / rate`` seconds, whoever sends it.
    """
    from prefect.client.orchestration import get_client

    names = []
    with get_client(sync_client=True) as client:
        for item, rate in rates.items():
            netloc = urlsplit(item).netloc if "//" in item else item
            name = limit_name(netloc)
            client.upsert_global_concurrency_limit_by_name(name, limit=1, slot_decay_per_second=float(rate))
            names.append(name)
    return names


def prefect_rate_limiter():
    """``before_request`` for ``PoliteSession``: wait for the host's global slot.

    ``strict=False``: where no limit was declared (a task called outside the
    flows, ``task.fn()`` in tests) this is a no-op and the per-process limiter
    alone applies.
    """

    def before_request(netloc: str) -> None:
        rate_limit(limit_name(netloc), strict=False)

    return before_request
