"""#13: the login lockout is keyed on (user, client address). Five bad passwords from one address -- a fuzzer, an
attacker -- lock that user from that address only; the real admin still logs in from their own workstation. The
lock is visible to the security admin and cleared by them, per address or all at once."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cloud.app import create_app
from cloud.core.config import Settings
from cloud.core.users import Role
from tests.cloud.security.conftest import ADMIN_PASSWORD, PASSWORD, add_user, bearer, login

ATTACKER, DESK = ("203.0.113.7", 40000), ("10.1.2.3", 50000)


def test_failures_from_one_address_do_not_lock_out_the_real_admin(cloud_settings: Settings) -> None:
    app = create_app(cloud_settings, run_background=False)
    with TestClient(app, client=ATTACKER) as attacker, TestClient(app, client=DESK) as desk:
        sec_id = add_user(desk, "sec1", Role.SECURITY_ADMIN)
        threshold = app.state.security_settings.lockout_threshold
        for _ in range(threshold):
            bad = attacker.post("/api/v1/auth/token", data={"username": "admin", "password": "Wrong-Passw0rd!"})
            assert bad.status_code == 401
        # the attacker's address is locked, even with the right password ...
        assert (
            attacker.post("/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}).status_code
            == 423
        )
        # ... the admin at their desk is not
        admin = bearer(login(desk, "admin", ADMIN_PASSWORD)["access_token"])
        assert desk.get("/api/v1/auth/me", headers=admin).status_code == 200

        # visible to the security admin (and only to them), with the address
        sec = bearer(login(desk, "sec1")["access_token"])
        assert desk.get("/api/v1/users/login-locks", headers=admin).status_code == 403
        locks = desk.get("/api/v1/users/login-locks", headers=sec).json()
        assert [(lk["username"], lk["client"]) for lk in locks] == [("admin", ATTACKER[0])]
        users = desk.get("/api/v1/users", headers=sec).json()["data"]
        shown = next(u for u in users if u["username"] == "admin")
        assert shown["locked"] is True and shown["locks"][0]["client"] == ATTACKER[0]

        # cleared by the security admin for that address; the journal says who, which address, how many
        admin_id = shown["id"]
        cleared = desk.post(f"/api/v1/users/{admin_id}/unlock", params={"client": ATTACKER[0]}, headers=sec)
        assert cleared.status_code == 200 and cleared.json()["locked"] is False
        assert desk.get("/api/v1/users/login-locks", headers=sec).json() == []
        assert (
            attacker.post("/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}).status_code
            == 200
        )
        assert sec_id


def test_a_good_login_resets_only_its_own_address(cloud_settings: Settings) -> None:
    app = create_app(cloud_settings, run_background=False)
    app.state.security_settings.lockout_threshold = 3
    with TestClient(app, client=ATTACKER) as attacker, TestClient(app, client=DESK) as desk:
        add_user(desk, "insp1", Role.INSPECTOR)
        for _ in range(2):
            assert (
                attacker.post("/api/v1/auth/token", data={"username": "insp1", "password": "Wrong-1a!xyzw"}).status_code
                == 401
            )
        login(desk, "insp1", PASSWORD)  # the owner's success elsewhere does not reset the attacker's count
        assert (
            attacker.post("/api/v1/auth/token", data={"username": "insp1", "password": "Wrong-1a!xyzw"}).status_code
            == 401
        )
        assert attacker.post("/api/v1/auth/token", data={"username": "insp1", "password": PASSWORD}).status_code == 423
        login(desk, "insp1", PASSWORD)
