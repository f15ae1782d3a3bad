"""Secrets never reach the access log. A browser's EventSource cannot send an Authorization header, so the console
opens its live feeds with ``?access_token=<JWT>``; uvicorn's access log wrote that whole URL, so anybody reading
the cloud's log (operators, a log shipper) could replay a live access token. Same for the signed ack links
(``?token=``). Real ``sentinel cloud serve`` process, real HTTP, the log file it writes."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.utils.served import ADMIN_PASSWORD, start_served_cloud


def test_tokens_in_query_strings_are_redacted_in_the_access_log(tmp_path: Path) -> None:
    server = start_served_cloud(tmp_path / "cloud")
    try:
        base = f"http://127.0.0.1:{server.port}/api/v1"
        with httpx.Client(timeout=30) as client:
            login = client.post(f"{base}/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
            token = login.json()["access_token"]
            with client.stream("GET", f"{base}/console/live", params={"access_token": token, "after": "0"}) as live:
                assert live.status_code == 200
                next(live.iter_bytes())  # the stream is open: the request line has been logged
            link = "ack-link-secret-" + "x" * 30
            assert client.get(f"{base}/notifications/ack", params={"token": link}).status_code == 400
            assert client.get(f"{base}/health", params={"probe": "kept"}).status_code == 200
    finally:
        server.stop()
    log = server.log_path.read_text(encoding="utf-8", errors="replace")
    assert "GET /api/v1/console/live?" in log  # the request is still logged …
    assert token not in log and token.split(".")[1] not in log  # … without the token
    assert link not in log
    assert "access_token=***" in log and "token=***" in log
    assert "probe=kept" in log  # other parameters stay readable
