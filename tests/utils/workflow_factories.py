"""A workflow world on a real app + SQLite: a department, a subject with a drug site, staff with duties."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from cloud.alerts import AlertSignal, apply_signal
from cloud.core.config import Settings
from cloud.core.db import session_scope
from cloud.core.security import create_token
from cloud.core.users import Role, UserCreate, create_user
from cloud.registry.models import Department, MarketSubject, RiskGrade, Site
from cloud.registry.uscc import make
from cloud.workflow.models import StaffProfile
from protocols import AlertPhase

USCC = make("91320508MA1WF0001")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass
class World:
    client: TestClient
    app: Any
    engine: Engine
    settings: Settings
    department_id: int
    subject_id: int
    site_id: str
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)

    def h(self, name: str) -> dict[str, str]:
        return self.headers[name]

    def add_user(
        self,
        name: str,
        role: str,
        *,
        duties: list[str] | None = None,
        department: bool = True,
        cert_no: str | None = None,
        full_name: str | None = None,
    ) -> int:
        with Session(self.engine) as session:
            user = create_user(
                session,
                user_create=UserCreate(
                    username=name, password="Passw0rd!long", role=Role(role), full_name=full_name or name
                ),
            )
            assert user.id is not None
            if duties is not None:
                session.add(
                    StaffProfile(
                        user_id=user.id,
                        duties=duties,
                        department_id=self.department_id if department else None,
                        cert_no=cert_no,
                    )
                )
            session.commit()
            uid = user.id
        token = create_token(subject=name, role=role, key=self.settings.jwt_key(), lifetime=timedelta(minutes=30))
        self.headers[name] = {"Authorization": f"Bearer {token}"}
        self.user_ids[name] = uid
        return uid

    def add_subject(self, name: str, uscc_body: str, grade: str = "C") -> int:
        with Session(self.engine) as session:
            subject = MarketSubject(
                name=name,
                uscc=make(uscc_body),
                risk_grade=RiskGrade(grade),
                department_id=self.department_id,
                address=f"{name}地址",
            )
            session.add(subject)
            session.commit()
            assert subject.id is not None
            return subject.id

    def alert(
        self,
        phase: AlertPhase = AlertPhase.RAISE,
        *,
        category: str = "drug_storage",
        severity: str = "major",
        at: datetime | None = None,
        rule_id: str = "fridge_high",
        device_id: str = "probe-1",
        sensor_id: str = "t1",
        value: float = 12.0,
        limit: float = 8.0,
        message: str = "冷藏柜温度 12.0 ℃ 超出 2–8 ℃",
    ) -> int | None:
        ts = at or datetime.now(UTC)
        signal = AlertSignal(
            site_id=self.site_id,
            device_id=device_id,
            rule_id=rule_id,
            phase=phase,
            severity=severity,
            category=category,
            message=message,
            ts=ts,
            started_at=ts,
            agent_id="agent-1",
            sensor_id=sensor_id,
            value=value,
            limit=limit,
            unit="°C",
        )
        with session_scope(self.engine, write=True) as session:
            outcome = apply_signal(session, signal)
            from sqlmodel import select

            from cloud.workflow.clues import ClueSource

            if outcome.alert is None or phase is AlertPhase.CLEAR:
                return None
            src = session.exec(select(ClueSource).where(ClueSource.alert_id == outcome.alert.id)).first()
            return src.clue_id if src else None

    def on_the_spot_case(
        self, amount: str | None = "100", *, party_type: str = "organisation", status: int = 201
    ) -> Any:
        """An on-the-spot (简易程序) decision against the world's pharmacy, registered by insp1 with insp2: a fine
        of ``amount`` yuan, or a warning when ``None``. Returns the response body (the case when created)."""
        body: dict[str, Any] = {
            "subject_id": self.subject_id,
            "party_type": party_type,
            "facts": "未按规定公示药品价格",
            "legal_basis": ["《价格违法行为行政处罚规定》[r]"],
            "decision": "警告" if amount is None else f"罚款 {amount} 元",
            "officers": [self.user_ids["insp2"]],
        }
        if amount is not None:
            body["amount"] = amount
        r = self.client.post("/api/v1/cases/on-the-spot", json=body, headers=self.h("insp1"))
        assert r.status_code == status, r.text
        return r.json()


def make_world(tmp_path: Path) -> World:
    from cloud.app import create_app

    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'wf.db'}",
        admin_password="Adm1n-pass-for-tests",  # type: ignore[arg-type]
        jwt_secret="test-secret-test-secret-test-secret",  # type: ignore[arg-type]
        ingest_enabled=False,
        presence_enabled=False,
    )
    app = create_app(settings, run_background=False)
    engine = app.state.engine
    with Session(engine) as session:
        dep = Department(code="gusu-1", name="姑苏区市场监督管理局第一市场监督管理所")
        session.add(dep)
        session.flush()
        subject = MarketSubject(
            name="示例大药房有限公司",
            uscc=USCC,
            risk_grade=RiskGrade.C,
            department_id=dep.id,
            address="苏州市姑苏区人民路 100 号",
            legal_representative="张三",
        )
        session.add(subject)
        session.flush()
        session.add(
            Site(
                site_id="pharmacy-1",
                name="示例大药房人民路店",
                address="苏州市姑苏区人民路 100 号",
                category="drug",
                subject_id=subject.id,
                department_id=dep.id,
            )
        )
        session.commit()
        assert dep.id is not None and subject.id is not None
        world = World(TestClient(app), app, engine, settings, dep.id, subject.id, "pharmacy-1")
    # separated duties (cloud/rules/duties.toml): the approver, the legal reviewer and the decision maker of a
    # case are different people; administrators hold no business duty
    world.add_user("head", "supervisor", duties=["department_head", "bureau_head", "supervisor"], full_name="周局长")
    world.add_user("legal", "supervisor", duties=["legal_reviewer"], full_name="法制科孙科长")
    world.add_user("chief", "supervisor", duties=["bureau_head"], full_name="吴副局长")
    world.add_user("clerk", "supervisor", duties=["intake_clerk", "dispatcher", "analyst"], full_name="受理员小陈")
    for i, name in enumerate(["insp1", "insp2", "insp3"], start=1):
        world.add_user(
            name,
            "inspector",
            duties=["inspector", "enforcement_officer"],
            cert_no=f"3205000{i}",
            full_name=["李四", "王五", "赵六"][i - 1],
        )
    return world


def work_order(**overrides: object) -> dict[str, object]:
    """A 12345 complaint about the world's pharmacy (by USCC), as the intake API takes it."""
    order: dict[str, object] = {
        "channel": "hotline_12345",
        "kind": "complaint",
        "external_no": "12345-0001",
        "category": "drug_storage",
        "complainant_name": "张某",
        "complainant_phone": "13800001234",
        "complainant_address": "苏州市道前街 1 号",
        "respondent_name": "示例大药房",
        "respondent_uscc": USCC,
        "respondent_address": "人民路 100 号",
        "request": "要求核查冷藏药品储存条件",
        "facts": "冷藏柜显示 12 ℃",
    }
    return {**order, **overrides}
