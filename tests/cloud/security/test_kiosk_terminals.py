"""Registered kiosk terminals (#13): the public kiosk routes limit a registered terminal per terminal and anything
else -- no credential, a made-up, wrong or revoked one -- per client address with the stricter anonymous limit, so
rotating the client-chosen ``X-Kiosk-Id`` header no longer buys more submissions or lookups.

Real parts: the app on uvicorn over real HTTP (httpx), SQLite; the CLI through its typer app on the same data
directory. The limits are installed small (the limiter is the app's own object) so the test stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cloud import journal
from cloud.api.routes.console import RateLimiter
from cloud.security.models import KioskTerminal
from tests.cloud.web.conftest import ADMIN_PASSWORD, PASSWORD, live_cloud

REPORT = {"kind": "report", "anonymous": True, "respondent_name": "某商店", "facts": "销售过期食品，货架上有多件"}


def _security_admin(admin: httpx.Client) -> None:
    r = admin.post("/users", json={"username": "secadm", "password": PASSWORD, "role": "security_admin"})
    assert r.status_code == 201, r.text


def test_a_registered_terminal_is_limited_per_terminal_and_a_rotated_header_buys_nothing(tmp_path: Path) -> None:
    with live_cloud(tmp_path) as cloud:
        app: Any = cloud.app
        app.state.kiosk_limiter = RateLimiter(per_key=2, total=50, window_s=600, per_terminal=4)
        app.state.kiosk_lookup_limiter = RateLimiter(per_key=1, total=50, window_s=600, per_terminal=3)
        admin = cloud.client()
        _security_admin(admin)
        sec = cloud.client("secadm", PASSWORD)
        try:
            # registering is the security administrator's (a credential, like a device's)
            refused = admin.post("/admin/kiosks", json={"name": "政务大厅 1 号机", "location": "一楼大厅"})
            assert refused.status_code == 403, refused.text
            issued = sec.post("/admin/kiosks", json={"name": "政务大厅 1 号机", "location": "一楼大厅"})
            assert issued.status_code == 201, issued.text
            body = issued.json()
            credential = body["credential"]
            assert body["provision_path"] == f"/kiosk/#terminal={credential}"
            listed = sec.get("/admin/kiosks").json()
            assert [(k["name"], k["revoked"]) for k in listed] == [("政务大厅 1 号机", False)]
            assert credential.split(".", 1)[1] not in str(listed)  # the secret is shown once, kept hashed
            with Session(app.state.engine) as session:
                row = session.exec(select(KioskTerminal)).one()
                assert credential.split(".", 1)[1] not in row.secret_sha256
            dup = sec.post("/admin/kiosks", json={"name": "政务大厅 1 号机", "location": "二楼"})
            assert dup.status_code == 409

            url = f"{cloud.base}/api/v1/console/kiosk/complaints"
            lookup = f"{cloud.base}/api/v1/console/kiosk/progress"
            unknown = {"receipt_no": "ZZ20260101000000", "code": "123456"}
            with httpx.Client(timeout=10) as c:
                # anonymous: the per-address limit, whatever X-Kiosk-Id says
                rotated = [c.post(url, json=REPORT, headers={"X-Kiosk-Id": f"hall-{n}"}).status_code for n in range(4)]
                assert rotated == [201, 201, 429, 429], rotated
                forged = {"X-Kiosk-Token": credential[:-3] + "abc"}
                made_up = {"X-Kiosk-Token": "999.not-a-terminal"}
                for headers in (forged, made_up, {"X-Kiosk-Token": "garbage"}):
                    assert c.post(url, json=REPORT, headers=headers).status_code == 429
                # the registered terminal: its own per-terminal bucket
                mine = {"X-Kiosk-Token": credential}
                codes = [c.post(url, json=REPORT, headers=mine).status_code for _ in range(5)]
                assert codes == [201] * 4 + [429], codes
                # lookups the same way
                anon = [c.post(lookup, json=unknown, headers={"X-Kiosk-Id": f"h{n}"}).status_code for n in range(3)]
                assert anon == [404, 429, 429], anon
                looked = [c.post(lookup, json=unknown, headers=mine).status_code for _ in range(4)]
                assert looked == [404, 404, 404, 429], looked
                # revoked: back to the anonymous (exhausted) address bucket
                assert sec.post(f"/admin/kiosks/{body['id']}/revoke").json()["revoked"] is True
                app.state.kiosk_limiter = RateLimiter(per_key=1, total=50, window_s=600, per_terminal=4)
                assert c.post(url, json=REPORT).status_code == 201  # the address's one
                assert c.post(url, json=REPORT, headers=mine).status_code == 429
        finally:
            admin.close()
            sec.close()
        with Session(app.state.engine) as session:
            actions = session.exec(
                select(journal.JournalEvent.action)
                .where(col(journal.JournalEvent.action).startswith("kiosk."))
                .order_by(col(journal.JournalEvent.id))
            ).all()
        assert actions == ["kiosk.registered", "kiosk.revoked"]


def test_the_cli_registers_lists_and_revokes_terminals(tmp_path: Path) -> None:
    from cloud.cli import app

    env = {"SENTINEL_DATA_DIR": str(tmp_path), "SENTINEL_ADMIN_PASSWORD": ADMIN_PASSWORD}
    runner = CliRunner()
    added = runner.invoke(app, ["kiosk", "add", "市民中心 2 号机", "--location", "市民中心二楼"], env=env)
    assert added.exit_code == 0, added.output
    assert "credential: 1." in added.output and "provision: /kiosk/#terminal=1." in added.output
    listed = runner.invoke(app, ["kiosk", "list"], env=env)
    assert "市民中心 2 号机" in listed.output and "启用" in listed.output
    assert runner.invoke(app, ["kiosk", "revoke", "1"], env=env).exit_code == 0
    assert "已停用" in runner.invoke(app, ["kiosk", "list"], env=env).output
    assert runner.invoke(app, ["kiosk", "revoke", "7"], env=env).exit_code != 0
