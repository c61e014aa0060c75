"""Wrong tokens are slowed per address: past the limit an address is answered 429 with the
delay, whatever token it sends, while other addresses go on."""

from __future__ import annotations

import warnings

import pytest

from api.app import create_app
from api.auth import FAILED_ATTEMPTS_PER_MINUTE
from ingest.store import Store
from tests.support.live import ADMIN_TOKEN, TEST_USERS

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_an_address_sending_wrong_tokens_is_slowed_and_others_are_not(store: Store) -> None:
    app = create_app(store, TEST_USERS)
    guesser = TestClient(app, client=("203.0.113.7", 50000))
    colleague = TestClient(app, client=("198.51.100.2", 50000))
    codes = [
        guesser.get("/api/v1/vehicles", headers={"Authorization": f"Bearer guess-{i}"}).status_code
        for i in range(FAILED_ATTEMPTS_PER_MINUTE + 5)
    ]
    assert codes[:FAILED_ATTEMPTS_PER_MINUTE] == [401] * FAILED_ATTEMPTS_PER_MINUTE
    assert codes[FAILED_ATTEMPTS_PER_MINUTE:] == [429] * 5
    # Even a right token is not looked at from that address until the minute has passed.
    blocked = guesser.get("/api/v1/vehicles", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 61
    assert "too many wrong tokens" in blocked.json()["detail"]
    # Another address, and the public pages, are not affected.
    fine = colleague.get("/api/v1/vehicles", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert fine.status_code == 200
    assert (
        colleague.get("/api/v1/vehicles", headers={"Authorization": "Bearer x"}).status_code == 401
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_right_tokens_are_never_counted(store: Store) -> None:
    app = create_app(store, TEST_USERS)
    office = TestClient(app, client=("192.0.2.10", 50000))
    for _ in range(FAILED_ATTEMPTS_PER_MINUTE * 3):
        r = office.get("/api/v1/vehicles", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.status_code == 200
