"""A polite HTTP client for Wikimedia and the other image hosts.

Wikimedia's User-Agent policy and robot policy (reference/data_sources.md §2.4)
ask every client for a descriptive User-Agent with a contact, requests in
series at a modest rate, back-off on 429/5xx honouring ``Retry-After``, and
bounded downloads. ``PoliteSession`` does exactly that and nothing more:

- it refuses to exist without a User-Agent that names a contact;
- it only talks to the configured hosts, redirects included;
- it keeps a minimum interval between requests to each host (``host:port``),
  shared by every session and thread of the process (``shared_limiter``), and
  calls ``before_request(netloc)`` first so that a caller can add a limit
  shared across processes (the flows use Prefect's global rate limits);
- it retries 429, 5xx, timeouts and connection errors with exponential
  back-off and full jitter, waiting at least ``Retry-After`` when the server
  gives one;
- ``download`` streams a body and stops at a byte cap.

Failures raise ``FetchError`` (a ``CmiscError``) whose ``reason`` is a short
word used verbatim in ``image_status`` (``rejected:<reason>``): ``http-404``,
``timeout``, ``network-error``, ``too-large-bytes``, ``host-not-allowed``, ...

``sleep``, ``clock`` and ``rng`` are injectable so that tests run instantly.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Self
from urllib.parse import urljoin, urlsplit

import requests

from cmisc_model.errors import CmiscError

# Statuses worth retrying: rate limited, or a server/gateway trouble that
# usually goes away.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_URL = re.compile(r"https?://[\w-]+(\.[\w-]+)+")


log = logging.getLogger(__name__)


def _short(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


class FetchError(CmiscError):
    """A request failed for good. ``reason`` is the short word for ``image_status``."""

    def __init__(self, reason: str, message: str, response: requests.Response | None = None):
        super().__init__(message)
        self.reason = reason
        self.response = response


def check_user_agent(user_agent: str) -> str:
    """Return ``user_agent`` if it is descriptive and names a contact, else raise."""
    ua = (user_agent or "").strip()
    if not ua or not (_EMAIL.search(ua) or _URL.search(ua)):
        raise CmiscError(
            f"User-Agent {ua!r} has no contact. Wikimedia's User-Agent policy requires a "
            "descriptive User-Agent naming the tool and a way to reach its operator "
            "(an e-mail address or a URL), e.g. 'cmisc/0.1 (https://example.org/cmisc; "
            "you@example.org)'; clients without one get HTTP 403 or are blocked. "
            "Set images.user_agent in params.yaml."
        )
    return ua


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class RateLimiter:
    """A minimum interval between request starts; slots are handed out in order.

    ``reserve`` returns how long the caller must sleep before its request
    (the caller sleeps, so a session's injected ``sleep`` is honoured).
    """

    def __init__(self, min_interval: float, clock: Callable[[], float] = time.monotonic):
        self.min_interval = min_interval
        self.clock = clock
        self._lock = threading.Lock()
        self._next_slot = 0.0

    def reserve(self) -> float:
        with self._lock:
            now = self.clock()
            start = max(now, self._next_slot)
            self._next_slot = start + self.min_interval
        return start - now


_SHARED: dict[tuple[str, float], RateLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(netloc: str, rate_per_s: float) -> RateLimiter:
    """The process's one limiter for ``netloc`` (``host[:port]``) at this rate.

    Every session of the process that talks to that host with the same
    configured rate uses it, so two Prefect tasks on two threads, each with
    its own client, still keep one rate (sessions configured with different
    rates for one host, e.g. the API and image downloads, keep one each).
    """
    with _SHARED_LOCK:
        key = (netloc, float(rate_per_s))
        if key not in _SHARED:
            _SHARED[key] = RateLimiter(1.0 / rate_per_s)
        return _SHARED[key]


class PoliteSession:
    """requests.Session with an allow-list, a rate limit, retries and byte caps.

    ``rate_per_s`` is the most requests started per second to one host by this
    process: sessions share one limiter per host (``shared_limiter``); a
    session with an injected ``clock`` (tests) keeps its own. Other processes
    have their own budget unless ``before_request`` adds a shared one.
    ``max_retries`` counts retries after the first try. A ``Retry-After`` longer
    than ``backoff_max`` is not waited for: the request fails at once (a thread
    blocked for an hour helps nobody; the next run retries it).
    """

    def __init__(
        self,
        user_agent: str,
        allowed_hosts: Iterable[str],
        rate_per_s: float = 1.0,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        timeout: float = 30.0,
        max_bytes: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        before_request: Callable[[str], None] | None = None,
    ):
        self.user_agent = check_user_agent(user_agent)
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        if rate_per_s <= 0:
            raise CmiscError(f"rate_per_s must be positive, got {rate_per_s}")
        self.rate_per_s = rate_per_s
        self.min_interval = 1.0 / rate_per_s
        self.before_request = before_request
        self._own_limiters: dict[str, RateLimiter] | None = None if clock is time.monotonic else {}
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.requests_sent = 0
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": self.user_agent, "Accept-Encoding": "gzip"})

    # ------------------------------------------------------------------ helpers

    def check_host(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or host not in self.allowed_hosts:
            raise FetchError(
                "host-not-allowed",
                f"host not allowed: {url} (allowed: {', '.join(sorted(self.allowed_hosts))})",
            )

    def _wait_for_slot(self, url: str) -> None:
        """Block until a request to ``url``'s host may start."""
        netloc = urlsplit(url).netloc.lower()
        if self.before_request is not None:
            self.before_request(netloc)
        if self._own_limiters is None:
            limiter = shared_limiter(netloc, self.rate_per_s)
        else:
            limiter = self._own_limiters.setdefault(netloc, RateLimiter(self.min_interval, self.clock))
        delay = limiter.reserve()
        if delay > 0:
            self.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None, what: str = "") -> None:
        # Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^attempt)].
        delay = self.rng.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))
        if retry_after is not None:
            delay = max(delay, retry_after)
        if what:  # a retry is never silent: one warning line each
            log.warning("%s; retry %d of %d in %.1f s", what, attempt + 1, self.max_retries, delay)
        self.sleep(delay)

    def _send(self, url: str, params: dict | None, stream: bool) -> requests.Response:
        """One request, following redirects by hand so every hop is allow-listed."""
        for _ in range(MAX_REDIRECTS + 1):
            self.check_host(url)
            self._wait_for_slot(url)
            self.requests_sent += 1  # every request on the wire: retries and redirects too
            resp = self._session.get(
                url, params=params, stream=stream, timeout=self.timeout, allow_redirects=False
            )
            if resp.is_redirect and "location" in resp.headers:
                url = urljoin(resp.url, resp.headers["location"])
                params = None  # the Location already carries the query
                resp.close()
                continue
            return resp
        raise FetchError("too-many-redirects", f"more than {MAX_REDIRECTS} redirects: {url}")

    # ------------------------------------------------------------------ public

    def get(
        self,
        url: str,
        params: dict | None = None,
        stream: bool = False,
        should_retry: Callable[[requests.Response], bool] | None = None,
    ) -> requests.Response:
        """GET with retries; returns a 2xx/3xx response or raises ``FetchError``.

        ``should_retry(response)`` lets a caller treat a 200 answer as "try
        again later" (MediaWiki's ``maxlag`` error comes as HTTP 200 with a
        ``Retry-After`` header); it is retried like a 503.
        """
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                resp = self._send(url, params, stream)
            except requests.Timeout as e:
                if last:
                    raise FetchError(
                        "timeout", f"{url}: timed out after {attempt + 1} tries"
                    ) from e
                self._backoff(attempt, None, f"{_short(url)}: timed out")
                continue
            except requests.ConnectionError as e:
                if last:
                    raise FetchError(
                        "network-error", f"{url}: connection failed after {attempt + 1} tries ({e})"
                    ) from e
                self._backoff(attempt, None, f"{_short(url)}: connection failed")
                continue
            retry = resp.status_code in RETRY_STATUSES or (
                resp.status_code < 400 and should_retry is not None and should_retry(resp)
            )
            if retry:
                wait = parse_retry_after(resp.headers.get("Retry-After"))
                reason = (
                    f"http-{resp.status_code}" if resp.status_code >= 400 else "retries-exhausted"
                )
                if last or (wait is not None and wait > self.backoff_max):
                    resp.close()
                    raise FetchError(
                        reason,
                        f"{url}: HTTP {resp.status_code} after {attempt + 1} tries"
                        + (f" (Retry-After {wait:.0f} s)" if wait is not None else ""),
                        response=resp,
                    )
                resp.close()
                self._backoff(attempt, wait, f"{_short(url)}: HTTP {resp.status_code}")
                continue
            if resp.status_code >= 400:
                resp.close()
                raise FetchError(
                    f"http-{resp.status_code}", f"{url}: HTTP {resp.status_code}", response=resp
                )
            return resp
        raise AssertionError("unreachable")

    def download(self, url: str, max_bytes: int | None = None) -> bytes:
        """The body of ``url``, at most ``max_bytes`` (default: the session's cap).

        Stops reading as soon as the cap is passed (``too-large-bytes``), before
        reading anything when Content-Length already says so. A connection
        dropped mid-body is retried like a failed request.
        """
        cap = max_bytes if max_bytes is not None else self.max_bytes
        for attempt in range(self.max_retries + 1):
            resp = self.get(url, stream=True)
            try:
                length = resp.headers.get("Content-Length") or ""
                # Content-Length is the encoded size; only trust it when not compressed.
                compressed = bool(resp.headers.get("Content-Encoding"))
                if cap is not None and length.isdigit() and not compressed and int(length) > cap:
                    raise FetchError(
                        "too-large-bytes", f"{url}: {int(length)} bytes, more than {cap}"
                    )
                chunks, total = [], 0
                for chunk in resp.iter_content(_CHUNK):
                    total += len(chunk)
                    if cap is not None and total > cap:
                        raise FetchError("too-large-bytes", f"{url}: more than {cap} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
            except (requests.ConnectionError, requests.Timeout) as e:
                # requests raises ConnectionError for ChunkedEncodingError's kin too.
                if attempt == self.max_retries:
                    reason = "timeout" if isinstance(e, requests.Timeout) else "network-error"
                    raise FetchError(
                        reason, f"{url}: body failed after {attempt + 1} tries ({e})"
                    ) from e
                self._backoff(attempt, None)
            except requests.exceptions.ChunkedEncodingError as e:
                if attempt == self.max_retries:
                    raise FetchError("network-error", f"{url}: body cut off ({e})") from e
                self._backoff(attempt, None)
            finally:
                resp.close()
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
