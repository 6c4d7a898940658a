"""PoliteSession against a real HTTP server on loopback (random port)."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cmisc_model.errors import CmiscError
from cmisc_model.sources.http import FetchError, PoliteSession, check_user_agent, parse_retry_after

UA = "cmisc-tests/0.1 (https://example.org/cmisc; tests@example.org)"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, length=True):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.hits[self.path] = srv.hits.get(self.path, 0) + 1
            n = srv.hits[self.path]
            srv.agents.append(self.headers.get("User-Agent"))
        path = self.path.split("?")[0]
        if path == "/ok":
            self._send(200, b"hello")
        elif path == "/404":
            self._send(404, b"no")
        elif path == "/429":
            self._send(429, b"slow down", {"Retry-After": "7"}) if n == 1 else self._send(
                200, b"ok"
            )
        elif path == "/429date":
            when = email.utils.formatdate(time.time() + 30, usegmt=True)
            self._send(429, b"", {"Retry-After": when}) if n == 1 else self._send(200, b"ok")
        elif path == "/429forever":
            self._send(429, b"", {"Retry-After": "3600"})
        elif path == "/503":
            self._send(503, b"busy") if n <= 2 else self._send(200, b"ok")
        elif path == "/always503":
            self._send(503, b"busy")
        elif path == "/slow":
            time.sleep(1.0)
            self._send(200, b"late")
        elif path == "/big":
            self._send(200, b"x" * 5000)
        elif path == "/big-nolength":
            self._send(200, b"x" * 5000, length=False)
        elif path == "/redirect-ok":
            self._send(302, b"", {"Location": "/ok"})
        elif path == "/redirect-away":
            self._send(302, b"", {"Location": f"http://localhost:{srv.server_port}/ok"})
        elif path == "/maxlag":
            if n == 1:
                self._send(200, b'{"error": {"code": "maxlag"}}', {"Retry-After": "5"})
            else:
                self._send(200, b'{"query": {}}')
        else:
            self._send(404)


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.lock, srv.hits, srv.agents = threading.Lock(), {}, []
    # clients that time out or stop at the byte cap hang up mid-answer: not an error here
    srv.handle_error = lambda request, client_address: None
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    # a proxy from the environment must not swallow loopback requests
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def base(server) -> str:
    return f"http://127.0.0.1:{server.server_port}"


def session(**kw) -> tuple[PoliteSession, list[float]]:
    sleeps: list[float] = []
    kw.setdefault("rate_per_s", 1000.0)
    kw.setdefault("timeout", 5.0)
    s = PoliteSession(UA, ["127.0.0.1"], sleep=sleeps.append, rng=random.Random(0), **kw)
    return s, sleeps


def test_user_agent_without_contact_is_refused():
    for bad in ("", "python-requests/2.31", "cmisc/0.1"):
        with pytest.raises(CmiscError, match="Wikimedia"):
            PoliteSession(bad, ["127.0.0.1"])
    assert check_user_agent("cmisc/0.1 (you@example.org)")
    assert check_user_agent("cmisc/0.1 (https://example.org/bot)")


def test_sends_the_user_agent_and_returns_the_body(server):
    s, _ = session()
    r = s.get(base(server) + "/ok")
    assert r.status_code == 200 and r.content == b"hello"
    assert server.agents[-1] == UA


def test_host_not_on_the_allow_list_is_refused_before_any_request(server):
    s, _ = session()
    before = dict(server.hits)
    with pytest.raises(FetchError, match="host not allowed") as e:
        s.get(f"http://localhost:{server.server_port}/ok")
    assert e.value.reason == "host-not-allowed"
    assert server.hits == before
    with pytest.raises(FetchError) as e:
        s.get("ftp://127.0.0.1/x")
    assert e.value.reason == "host-not-allowed"


def test_redirects_are_followed_only_to_allowed_hosts(server):
    s, _ = session()
    assert s.get(base(server) + "/redirect-ok").content == b"hello"
    with pytest.raises(FetchError) as e:
        s.get(base(server) + "/redirect-away")
    assert e.value.reason == "host-not-allowed"


def test_404_fails_at_once_with_its_status(server):
    s, sleeps = session()
    with pytest.raises(FetchError) as e:
        s.get(base(server) + "/404?a")
    assert e.value.reason == "http-404"
    assert server.hits["/404?a"] == 1 and sleeps == []


def test_429_waits_for_retry_after_then_succeeds(server):
    s, sleeps = session()
    assert s.get(base(server) + "/429?a").content == b"ok"
    assert server.hits["/429?a"] == 2
    assert max(sleeps) >= 7.0  # at least Retry-After, never less


def test_retry_after_as_http_date(server):
    s, sleeps = session()
    assert s.get(base(server) + "/429date?a").content == b"ok"
    assert 25 <= max(sleeps) <= 31
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("garbage") is None


def test_retry_after_longer_than_backoff_max_fails_instead_of_blocking(server):
    s, sleeps = session(backoff_max=60)
    with pytest.raises(FetchError) as e:
        s.get(base(server) + "/429forever?a")
    assert e.value.reason == "http-429" and sleeps == []


def test_503_is_retried_with_exponential_backoff_and_full_jitter(server):
    s, sleeps = session(backoff_base=1.0, backoff_max=60)
    assert s.get(base(server) + "/503?a").content == b"ok"
    assert server.hits["/503?a"] == 3
    backoffs = [d for d in sleeps if d > 0.01]  # rate-limit waits are tiny here
    assert len(backoffs) == 2
    assert 0 <= backoffs[0] <= 1.0 and 0 <= backoffs[1] <= 2.0  # uniform(0, base * 2^attempt)


def test_gives_up_after_max_retries(server):
    s, _ = session(max_retries=3)
    with pytest.raises(FetchError) as e:
        s.get(base(server) + "/always503?a")
    assert e.value.reason == "http-503"
    assert server.hits["/always503?a"] == 4  # the first try and three retries


def test_timeout_is_retried_then_reported(server):
    s, _ = session(timeout=0.2, max_retries=1)
    t = time.monotonic()
    with pytest.raises(FetchError) as e:
        s.get(base(server) + "/slow?a")
    assert e.value.reason == "timeout"
    assert server.hits["/slow?a"] == 2
    assert time.monotonic() - t < 3


def test_should_retry_handles_maxlag_answers(server):
    s, sleeps = session()
    r = s.get(base(server) + "/maxlag?a", should_retry=lambda r: b"maxlag" in r.content)
    assert r.content == b'{"query": {}}'
    assert max(sleeps) >= 5.0


def test_download_enforces_the_byte_cap(server):
    s, _ = session()
    assert len(s.download(base(server) + "/big", max_bytes=5000)) == 5000
    for path in ("/big", "/big-nolength"):  # declared length, and a body without one
        with pytest.raises(FetchError) as e:
            s.download(base(server) + path, max_bytes=4999)
        assert e.value.reason == "too-large-bytes"


def test_rate_limit_spaces_requests_across_threads():
    clock = [0.0]
    sleeps: list[float] = []

    def fake_sleep(d):
        sleeps.append(d)

    s = PoliteSession(UA, ["127.0.0.1"], rate_per_s=2.0, sleep=fake_sleep, clock=lambda: clock[0])
    threads = [threading.Thread(target=s._wait_for_slot, args=("http://127.0.0.1/x",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # four requests at t=0 with 0.5 s spacing: waits 0.5, 1.0 and 1.5 s
    assert sorted(sleeps) == [0.5, 1.0, 1.5]


def test_sessions_of_one_process_share_the_rate_of_a_host(server):
    """Each Prefect task builds its own client; the rate is still one per host."""
    sessions = [PoliteSession(UA, ["127.0.0.1"], rate_per_s=10.0) for _ in range(3)]
    starts: list[float] = []

    def hit(s):
        for _ in range(3):
            s.get(base(server) + "/ok")
            starts.append(time.monotonic())

    threads = [threading.Thread(target=hit, args=(s,)) for s in sessions]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - t0 >= 8 / 10.0 - 0.02  # nine requests, 0.1 s apart
    seen: list[str] = []
    sessions[0].before_request = seen.append
    sessions[0].get(base(server) + "/ok")
    assert seen == [f"127.0.0.1:{server.server_address[1]}"]


def test_real_rate_limit_with_real_sleep(server):
    s = PoliteSession(UA, ["127.0.0.1"], rate_per_s=20.0)
    t = time.monotonic()
    for _ in range(5):
        s.get(base(server) + "/ok")
    assert time.monotonic() - t >= 4 / 20.0 - 0.01
