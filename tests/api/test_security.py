"""What every answer carries and what is refused before it is read: security headers, a
Content-Security-Policy the pages satisfy (the documentation in a real Chromium), bodies
larger than the limit, cross-origin callers."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import create_app
from api.security import DEFAULT_MAX_BODY_BYTES
from ingest.store import Store
from tests.support.live import TEST_USERS, running_api, serving

ADDRESSES = [
    "/",
    "/docs",
    "/openapi.json",
    "/healthz",
    "/api/v1/vehicles",
    "/api/v1/nothing-here",
    "/static/app/main.js",
    "/public/doct-eure",
    "/public/nobody",
]


def test_every_answer_carries_the_security_headers(store: Store) -> None:
    with running_api(store) as api:
        for address in ADDRESSES:
            r = api.get(address)
            assert r.headers["x-content-type-options"] == "nosniff", address
            assert r.headers["referrer-policy"] == "same-origin", address
            policy = r.headers["content-security-policy"]
            assert "unsafe-inline" not in policy or address.startswith("/public"), address
            assert "frame-ancestors 'none'" in policy, address
        app_policy = api.get("/").headers["content-security-policy"]
        assert "script-src 'self';" in app_policy and "style-src 'self';" in app_policy
        assert api.get("/").headers["x-frame-options"] == "DENY"


def raw_request(url: str, head: str, body: bytes = b"", wait_s: float = 5.0) -> str:
    """Send ``head`` and ``body`` on a socket and return the status line answered, without
    sending more: a server that waited for the rest of a body would not answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=wait_s) as s:
        s.sendall(head.encode() + body)
        answer = s.recv(4096).decode(errors="replace")
    return answer.split("\r\n", 1)[0]


def test_a_huge_body_is_refused_before_it_is_read(store: Store) -> None:
    app = create_app(store, TEST_USERS)
    with serving(app) as url:
        host = urlsplit(url).netloc
        started = time.monotonic()
        # 100 MB announced, 10 bytes sent, no token: answered at once, not after reading.
        status = raw_request(
            url,
            f"POST /api/v1/visits/x/confirm HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n",
            b'{"note": "',
        )
        assert status == "HTTP/1.1 413 Request Entity Too Large", status
        assert time.monotonic() - started < 5
        # Chunked, without a length: refused once past the limit, the rest never read.
        chunk = b"x" * 65536
        body = b"".join(
            f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            for _ in range(DEFAULT_MAX_BODY_BYTES // len(chunk) + 2)
        )
        status = raw_request(
            url,
            f"POST /api/v1/alerts/1/ack HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            body,
        )
        assert status == "HTTP/1.1 413 Request Entity Too Large", status
        # A body under the limit still reaches the route (and its checks).
        ok = httpx.post(
            f"{url}/api/v1/alerts/1/ack",
            json={"comment": "x" * 500},
            headers={"Authorization": "Bearer coord-eure-token"},
        )
        assert ok.status_code == 404, ok.text  # no alert 1: the route answered


def test_cross_origin_callers_get_no_cors_grant(store: Store) -> None:
    with running_api(store) as api:
        preflight = api.options(
            "/api/v1/vehicles",
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        plain = api.get("/api/v1/vehicles", headers={"Origin": "https://evil.example"})
    for r in (preflight, plain):
        assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("limit", [1024, 4096])
def test_the_limit_is_a_setting(store: Store, limit: int) -> None:
    with serving(create_app(store, TEST_USERS, max_body_bytes=limit)) as url:
        over = httpx.post(f"{url}/api/v1/alerts/1/ack", content=b"x" * (limit + 1))
        under = httpx.post(f"{url}/api/v1/alerts/1/ack", content=b"x" * (limit - 1))
    assert over.status_code == 413
    assert under.status_code == 401  # read, then refused for want of a token


def test_ids_in_paths_past_what_the_database_holds_are_refused(store: Store) -> None:
    with running_api(store, token="coord-eure-token") as api:
        for path in ("/api/v1/alerts/{}/ack", "/api/v1/coldchain/alarms/{}/ack"):
            for bad in (10**30, 2**63, 0, -1):
                r = api.post(path.format(bad), json={"comment": "vu"})
                assert r.status_code == 422, (path, bad, r.text)
            largest = api.post(path.format(2**63 - 1), json={"comment": "vu"})
            assert largest.status_code == 404, largest.text
