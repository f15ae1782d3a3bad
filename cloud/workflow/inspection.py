"""Inspection tasks (监管, standard §8.5.1): accept, check in, record results per checklist item with photos,
submit; findings matched to disposals; 现场检查笔录 and 责令改正通知书 generated, stored and signed; a finding
that needs enforcement becomes a case source; closing the task feeds the outcome back to the clue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from cloud.core.config import Settings
from cloud.core.db import utcnow
from cloud.documents.models import CheckedItem, InspectionRecord, Officer, Party, RectificationOrder, ViolationLine
from cloud.evidence import EvidenceStore
from cloud.registry.models import MarketSubject, Site
from cloud.rules.library import Finding, FindingDisposal, GradeDisposal, packaged_catalogue
from cloud.workflow import feedback, paperwork, staffing
from cloud.workflow.config import workflow_rules
from cloud.workflow.models import DocumentRecord, InspectionResult, InspectionTask
from cloud.workflow.service import Actor, Conflict, Forbidden, Invalid, NotFound, apply_transition, record
from cloud.workflow.states import TASK_MACHINE, TaskState
from cloud.workflow.states import Role as Duty

CONCLUSION_LABELS = {
    "compliant": "检查未发现问题",
    "on_site": "发现轻微问题，已当场改正",
    "rectify": "发现问题，已责令限期改正",
    "case": "发现涉嫌违法行为，已移送立案",
}
#: a 复查 that finds nothing wrong confirms the rectification ordered before
FOLLOW_UP_CONCLUSIONS = {"compliant": "经复查已按要求改正"}
_RANK = {
    GradeDisposal.NONE: 0,
    GradeDisposal.ON_SITE_CORRECTION: 1,
    GradeDisposal.RECTIFICATION_ORDER: 2,
    GradeDisposal.OPEN_CASE: 3,
}
_CONCLUSION = {0: "compliant", 1: "on_site", 2: "rectify", 3: "case"}
INSPECTOR_ACTIONS = {"accept", "decline", "check_in", "submit"}


def get_task(session: Session, task_id: int) -> InspectionTask:
    task = session.get(InspectionTask, task_id)
    if task is None:
        raise NotFound(f"检查任务 {task_id} 不存在 / task not found")
    return task


def create_task(
    session: Session,
    *,
    actor: Actor,
    members: list[staffing.StaffMember],
    items: list[str],
    due_date: dt.date,
    due_warnings: list[str] | None = None,
    clue_id: int | None = None,
    plan_id: int | None = None,
    subject_id: int | None = None,
    site_id: str | None = None,
    department_id: int | None = None,
    method: str | None = None,
    instructions: str = "",
) -> InspectionTask:
    catalogue = packaged_catalogue()
    for code in items:
        try:
            catalogue.item(code)
        except KeyError:
            raise Invalid(f"检查项目 {code} 不在检查事项清单中 / unknown checklist item {code}") from None
    if not items:
        raise Invalid("检查任务至少需要一个检查项目 / a task needs at least one checklist item")
    task = InspectionTask(
        task_no="",
        clue_id=clue_id,
        plan_id=plan_id,
        subject_id=subject_id,
        site_id=site_id,
        department_id=department_id,
        method=method or workflow_rules().dispatch.default_method,
        items=list(dict.fromkeys(items)),
        due_date=due_date,
        due_warnings=list(due_warnings or []),
        instructions=instructions,
        created_by=actor.username,
    )
    session.add(task)
    session.flush()
    task.task_no = f"JC{due_date.year}-{task.id:06d}"
    session.add(task)
    staffing.assign(session, "task", task.id or 0, members)
    record(
        session,
        actor,
        "task.created",
        "task",
        task.id or 0,
        {
            "task_no": task.task_no,
            "clue_id": clue_id,
            "plan_id": plan_id,
            "subject_id": subject_id,
            "department_id": department_id,
            "items": task.items,
            "due_date": due_date.isoformat(),
            "due_warnings": task.due_warnings,
            "assignees": [m.actor.user_id for m in members],
            "assignee_names": [m.actor.name for m in members],
            "workloads": [m.workload for m in members],
        },
    )
    return task


def _check_assignee(session: Session, task: InspectionTask, actor: Actor, duty: Duty) -> None:
    if duty is Duty.INSPECTOR and actor.user_id not in staffing.assignees(
        session, "task", task.id or 0, open_only=True
    ):
        raise Forbidden(f"{actor.name} 不是任务 {task.task_no} 的检查人员 / not assigned to this task")


def task_action(
    session: Session,
    settings: Settings,
    task: InspectionTask,
    action: str,
    actor: Actor,
    *,
    reason: str | None = None,
    role: str | None = None,
    expected_version: int | None = None,
    check_in: dict[str, Any] | None = None,
    assignees: list[int] | None = None,
    findings: str = "",
    party_opinion: str = "",
) -> InspectionTask:
    from cloud.workflow.service import pick_role

    duty = pick_role(TASK_MACHINE, str(task.state), action, actor, role)
    if action in INSPECTOR_ACTIONS:
        _check_assignee(session, task, actor, duty)
    if action == "submit":
        return submit(
            session,
            settings,
            task,
            actor,
            findings=findings,
            party_opinion=party_opinion,
            role=duty.value,
            expected_version=expected_version,
        )
    values: dict[str, Any] = {}
    if action == "accept":
        values["accepted_at"] = utcnow()
    elif action == "check_in":
        values["checked_in_at"] = utcnow()
        check_in = _with_geofence(session, task, check_in or {})
        values["check_in"] = check_in
    elif action == "close":
        values["closed_at"] = utcnow()
    members: list[staffing.StaffMember] = []
    if action == "reassign":
        members = _reassigned(session, task, assignees or None)
    apply_transition(
        session,
        TASK_MACHINE,
        task,
        action,
        actor,
        reason=reason,
        role=duty.value,
        expected_version=expected_version,
        values=values,
        payload={"task_no": task.task_no, "clue_id": task.clue_id, "check_in": check_in}
        if check_in
        else {"task_no": task.task_no, "clue_id": task.clue_id},
    )
    if action == "check_in" and check_in and check_in.get("geofence") == "outside":
        _flag_outside_geofence(session, task, actor, check_in)
    if action == "accept":
        feedback.start_clue(session, task.clue_id, actor, because=f"task {task.task_no} accepted")
    elif action in ("decline", "cancel"):
        staffing.release(session, "task", task.id or 0)
    elif action == "reassign":
        staffing.replace(session, "task", task.id or 0, members)
        record(
            session,
            actor,
            "task.assigned",
            "task",
            task.id or 0,
            {"assignees": [m.actor.user_id for m in members], "assignee_names": [m.actor.name for m in members]},
        )
    if action == "close":
        staffing.release(session, "task", task.id or 0)
        from cloud.workflow import follow_up

        follow_up.mark_done(session, task)
        follow_up.owe_follow_up(session, task, actor)  # a rectification order: 复查 on its deadline (scheduler)
        feedback.outcome_reached(session, task.clue_id, task_outcome(session, task), source=f"task:{task.id}")
    elif action == "cancel":
        feedback.outcome_reached(
            session, task.clue_id, f"检查任务 {task.task_no} 撤销：{reason}", source=f"task:{task.id}"
        )
    return task


def decliners(session: Session, task: InspectionTask) -> set[int]:
    """The people who declined this task (退回/回避), from the journal: never dispatched to it again."""
    from cloud import journal
    from cloud.core.users import User

    names = {
        e.actor
        for e in session.exec(
            select(journal.JournalEvent).where(
                journal.JournalEvent.target_type == "task",
                journal.JournalEvent.target_id == str(task.id),
                journal.JournalEvent.action == "task.transition",
            )
        )
        if (e.payload or {}).get("to") == TaskState.DECLINED
    }
    users = session.exec(select(User.id).where(col(User.username).in_(names or ["-"]))).all()
    return {int(uid) for uid in users if uid is not None}


def _reassigned(session: Session, task: InspectionTask, explicit: list[int] | None) -> list[staffing.StaffMember]:
    """Re-dispatch a declined task: the named people, else the previous officers minus whoever declined, filled up
    by dispatch's balancing (jurisdiction, workload, recusal), never a decliner."""
    need = workflow_rules().dispatch.inspectors_per_task
    common: dict[str, Any] = {
        "duty": Duty.INSPECTOR,
        "department_id": task.department_id,
        "subject_id": task.subject_id,
    }
    if explicit:
        return staffing.pick(session, count=need, explicit=explicit, **common)
    previous = staffing.assignees(session, "task", task.id or 0)
    gone = decliners(session, task)
    keep_ids = [uid for uid in dict.fromkeys(previous) if uid not in gone]
    try:
        keep = staffing.pick(session, count=len(keep_ids), explicit=keep_ids, **common) if keep_ids else []
    except Invalid:  # a kept officer is no longer eligible: choose everyone anew
        keep = []
    taken = {m.actor.user_id for m in keep if m.actor.user_id is not None}
    try:
        fill = (
            staffing.pick(session, count=max(0, need - len(keep)), exclude=gone | taken, **common)
            if len(keep) < need
            else []
        )
    except Invalid as exc:
        raise Invalid(
            f"可重新派发的检查人员不足（已排除退回任务的人员） / not enough inspectors to reassign: {exc.message}",
            code="not_enough_staff",
        ) from None
    return [*keep, *fill]


def conclusion_label(task: InspectionTask) -> str | None:
    """The conclusion in words; a 复查 says whether the order it checks was complied with."""
    from cloud.workflow.follow_up import FOLLOW_UP_METHOD

    if not task.conclusion:
        return None
    if task.method == FOLLOW_UP_METHOD and task.conclusion in FOLLOW_UP_CONCLUSIONS:
        return FOLLOW_UP_CONCLUSIONS[task.conclusion]
    return CONCLUSION_LABELS.get(task.conclusion)


def task_outcome(session: Session, task: InspectionTask) -> str:
    from cloud.workflow.follow_up import FOLLOW_UP_METHOD

    kind = "复查任务" if task.method == FOLLOW_UP_METHOD else "检查任务"
    text = f"{kind} {task.task_no}：{conclusion_label(task) or '已完成'}"
    docs = session.exec(
        select(DocumentRecord).where(DocumentRecord.task_id == task.id, DocumentRecord.kind == "rectification_order")
    ).all()
    if docs:
        text += "（" + "、".join(f"{d.title} {d.doc_no}" for d in docs) + "）"
    if task.case_id:
        text += f"，案源 {task.case_id}"
    return text


def record_result(
    session: Session,
    task: InspectionTask,
    actor: Actor,
    *,
    item_code: str,
    outcome: str,
    grade: str | None = None,
    note: str = "",
) -> InspectionResult:
    _check_assignee(session, task, actor, Duty.INSPECTOR)
    if task.state != TaskState.CHECKED_IN:
        raise Conflict(
            f"任务处于“{TASK_MACHINE.state_label(task.state)}”状态，须现场签到后才能记录检查结果 / check in first"
        )
    catalogue = packaged_catalogue()
    try:
        catalogue.item(item_code)
    except KeyError:
        raise Invalid(f"检查项目 {item_code} 不在检查事项清单中 / unknown checklist item") from None
    if grade is not None:
        try:
            catalogue.grades.grade(grade)
        except KeyError:
            raise Invalid(f"未知违法行为等级 {grade} / unknown violation grade") from None
    if item_code not in task.items:
        task.items = [*task.items, item_code]
        session.add(task)
    row = session.exec(
        select(InspectionResult).where(InspectionResult.task_id == task.id, InspectionResult.item_code == item_code)
    ).first()
    if row is None:
        row = InspectionResult(task_id=task.id or 0, item_code=item_code, outcome=outcome, recorded_by=actor.username)
    row.outcome, row.grade, row.note = outcome, grade, note
    row.recorded_by, row.recorded_at = actor.username, utcnow()
    session.add(row)
    session.flush()
    record(
        session,
        actor,
        "task.result_recorded",
        "task",
        task.id or 0,
        {"item_code": item_code, "outcome": outcome, "grade": grade, "note": note},
    )
    return row


def add_photo(
    session: Session, settings: Settings, task: InspectionTask, actor: Actor, *, item_code: str, data: bytes
) -> str:
    row = session.exec(
        select(InspectionResult).where(InspectionResult.task_id == task.id, InspectionResult.item_code == item_code)
    ).first()
    if row is None:
        raise Conflict("请先记录该检查项目的结果，再上传照片 / record the item's result before adding photos")
    _check_assignee(session, task, actor, Duty.INSPECTOR)
    if task.state != TaskState.CHECKED_IN:
        raise Conflict("任务已提交，不能再上传照片 / task no longer open for photos")
    sha = hashlib.sha256(data).hexdigest()
    from cloud.evidence import EvidenceError

    try:
        EvidenceStore(settings.data_dir / "evidence").put(sha, data)
    except EvidenceError as exc:
        raise Invalid(f"照片无法保存：{exc.detail} / {exc.reason}") from None
    if sha not in row.photos:
        row.photos = [*row.photos, sha]
        session.add(row)
        session.flush()
    record(session, actor, "task.photo_added", "task", task.id or 0, {"item_code": item_code, "sha256": sha})
    return sha


def results(session: Session, task_id: int) -> list[InspectionResult]:
    return list(
        session.exec(
            select(InspectionResult).where(InspectionResult.task_id == task_id).order_by(col(InspectionResult.id))
        )
    )


def party_of(
    session: Session, subject_id: int | None, site_id: str | None, fallback: str = "", *, strict: bool = False
) -> tuple[Party, str]:
    """The party (当事人) and the place of an inspection from the registry. ``strict`` (for legal documents): refuse
    with a Chinese message saying what to register instead of printing a placeholder."""
    subject = session.get(MarketSubject, subject_id) if subject_id is not None else None
    site = session.get(Site, site_id) if site_id else None
    if strict:
        where = f"场所“{site.name}”" if site else "该任务"
        if subject is None:
            raise Invalid(
                f"无法生成文书：{where}未关联市场主体（当事人）。请先在“市场主体”中登记该主体，并在场所中选择它 / "
                "no market subject (party) registered for this site",
                code="party_missing",
            )
        if not (subject.address or (site.address if site else None)):
            raise Invalid(
                f"无法生成文书：市场主体“{subject.name}”未登记住所（地址）。请先在“市场主体”中补录 / "
                "the party's address is not registered",
                code="party_address_missing",
            )
    address = (subject.address if subject else None) or (site.address if site else None) or "（地址未登记）"
    name = (subject.name if subject else None) or (site.name if site else None) or fallback or "（当事人未登记）"
    licence = _licence_no(session, subject.id) if subject is not None and subject.id is not None else None
    party = Party(
        name=name,
        uscc=subject.uscc if subject else None,
        address=address,
        legal_representative=subject.legal_representative if subject else None,
        licence_no=licence,
    )
    place = (site.address or site.name) if site else address
    return party, place or address


def _licence_no(session: Session, subject_id: int) -> str | None:
    from cloud.registry.models import Licence

    row = session.exec(select(Licence).where(Licence.subject_id == subject_id).order_by(col(Licence.id))).first()
    return row.licence_no if row else None


def officers_of(
    session: Session, target_type: str, target_id: int, *, strict: bool = False
) -> list[tuple[Actor, Officer]]:
    """The assigned officers with their real names and 执法证号; ``strict`` (legal documents) refuses a missing
    certificate number instead of printing a placeholder."""
    from cloud.core.users import User
    from cloud.workflow.service import actor_for

    out = []
    for uid in staffing.assignees(session, target_type, target_id):
        user = session.get(User, uid)
        if user is None:
            continue
        a = actor_for(session, user)
        if strict and not a.cert_no:
            raise Invalid(
                f"无法生成文书：检查人员“{a.name}”未登记执法证号。请在“人员”中补录后再提交 / "
                f"officer {a.username} has no enforcement certificate number",
                code="cert_missing",
            )
        out.append((a, Officer(name=a.name[:50], cert_no=a.cert_no or "待补录")))
    return out


@dataclass(frozen=True, slots=True)
class Assessment:
    disposals: list[FindingDisposal]
    conclusion: str


def assess(session: Session, task: InspectionTask) -> Assessment:
    rows = results(session, task.id or 0)
    done = {r.item_code for r in rows}
    missing = [c for c in task.items if c not in done]
    if missing:
        raise Invalid(
            f"尚有检查项目未记录结果：{'、'.join(missing)} / results missing for {missing}", code="results_missing"
        )
    findings = [Finding(r.item_code, r.outcome == "pass", r.grade, r.note) for r in rows if r.outcome != "na"]
    disposals = packaged_catalogue().assess(findings)
    rank = max((_RANK[d.grade.disposal] for d in disposals), default=0)
    return Assessment(disposals, _CONCLUSION[rank])


def submit(
    session: Session,
    settings: Settings,
    task: InspectionTask,
    actor: Actor,
    *,
    findings: str = "",
    party_opinion: str = "",
    role: str | None = None,
    expected_version: int | None = None,
) -> InspectionTask:
    assessment = assess(session, task)
    now = utcnow()
    apply_transition(
        session,
        TASK_MACHINE,
        task,
        "submit",
        actor,
        role=role,
        expected_version=expected_version,
        values={
            "submitted_at": now,
            "conclusion": assessment.conclusion,
            "findings_summary": findings[:4000],
            "party_opinion": party_opinion[:2000],
        },
        payload={
            "task_no": task.task_no,
            "clue_id": task.clue_id,
            "conclusion": assessment.conclusion,
            "assignees": staffing.assignees(session, "task", task.id or 0),  # credited in the scorecards
        },
    )
    record(
        session,
        actor,
        "task.assessed",
        "task",
        task.id or 0,
        {
            "conclusion": assessment.conclusion,
            "disposals": [
                {"item": d.item.code, "grade": d.grade.id, "disposal": d.grade.disposal.value, "basis": list(d.basis)}
                for d in assessment.disposals
            ],
        },
    )
    generate_documents(session, settings, task, actor, assessment, findings=findings, party_opinion=party_opinion)
    if assessment.conclusion == "case":
        from cloud.workflow.enforcement import register_case

        serious = [d for d in assessment.disposals if d.grade.disposal is GradeDisposal.OPEN_CASE]
        party, _ = party_of(session, task.subject_id, task.site_id)
        case = register_case(
            session,
            settings,
            actor,
            source="inspection",
            clue_id=None,
            task_id=task.id,
            subject_id=task.subject_id,
            party_name=party.name,
            department_id=task.department_id,
            summary="；".join(f"{d.item.title}：{d.finding.note or '不符合要求'}" for d in serious),
            legal_basis=sorted({c for d in serious for c in (*d.basis, *d.penalty)}),
            received_at=now,
        )
        task.case_id = case.id
        session.add(task)
        session.flush()
    return task


def generate_documents(
    session: Session,
    settings: Settings,
    task: InspectionTask,
    actor: Actor,
    assessment: Assessment,
    *,
    findings: str,
    party_opinion: str,
) -> list[DocumentRecord]:
    bureau = workflow_rules().bureau
    catalogue = packaged_catalogue()
    party, place = party_of(session, task.subject_id, task.site_id, strict=True)
    officers = [o for _, o in officers_of(session, "task", task.id or 0, strict=True)]
    rows = {r.item_code: r for r in results(session, task.id or 0)}
    label = {"pass": "符合", "fail": "不符合", "na": "不适用"}
    items = [
        CheckedItem(code=c, title=catalogue.item(c).title, result=label[rows[c].outcome], note=rows[c].note)
        for c in task.items
    ]
    failing = [d for d in assessment.disposals if not d.finding.passed]
    summary = findings.strip() or ("；".join(f"{_fact(d)}（{d.grade.label}）" for d in failing) or "检查项目均符合要求")
    photos = sum(len(r.photos) for r in rows.values())
    today = paperwork.today()
    started = task.checked_in_at or utcnow()
    docs: list[DocumentRecord] = []
    wanted = catalogue.documents_for(assessment.disposals) or ["inspection_record"]
    if "inspection_record" in wanted:
        data = InspectionRecord(
            doc_no=paperwork.next_doc_no(session, "inspection_record", today.year),
            agency=bureau.agency,
            party=party,
            place=place,
            started_at=started,
            ended_at=max(utcnow(), started),
            officers=officers,
            recorder=actor.name[:50],
            task_ref=task.task_no,
            items=items,
            findings=summary[:4000],
            party_opinion=party_opinion[:2000],
            evidence=[f"现场照片 {photos} 张"] if photos else [],
        )
        docs.append(paperwork.store_document(session, settings, data, actor, task_id=task.id, clue_id=task.clue_id))
    to_rectify = [d for d in failing if _RANK[d.grade.disposal] >= _RANK[GradeDisposal.RECTIFICATION_ORDER]]
    if "rectification_order" in wanted and to_rectify:
        days = max(d.grade.rectify_days for d in to_rectify)
        cite = catalogue.laws.cite
        basis = list(dict.fromkeys(cite(r, full=True) for d in to_rectify for r in (d.item.penalty or d.item.basis)))
        order = RectificationOrder(
            doc_no=paperwork.next_doc_no(session, "rectification_order", today.year),
            agency=bureau.agency,
            party=party,
            inspected_on=started.astimezone(paperwork.BEIJING).date(),
            violations=[
                ViolationLine(fact=_fact(d), violated=[cite(r, full=True) for r in d.item.basis]) for d in to_rectify
            ],
            legal_basis=basis,
            deadline=today + dt.timedelta(days=days),
            requirements=list(dict.fromkeys(d.item.remedy for d in to_rectify)),
            issued_on=today,
            contact=bureau.contact,
            reconsideration_body=bureau.reconsideration_body,
            court=bureau.court,
            officers=officers,
        )
        docs.append(paperwork.store_document(session, settings, order, actor, task_id=task.id, clue_id=task.clue_id))
    for doc in docs:
        paperwork.sign(session, settings, doc, actor, role="检查人员")
    return docs


def _fact(d: FindingDisposal) -> str:
    """The violation as the document states it: the item's statement, then what the inspector found on site."""
    note = d.finding.note.strip().rstrip("。；;")
    return f"{d.item.violation}（现场检查发现：{note}）" if note else d.item.violation


# ---------------------------------------------------------------------------------------------------------
# check-in geofence (cloud/geo/geofence.py, radius in cloud/rules/geo.toml)
# ---------------------------------------------------------------------------------------------------------
def _with_geofence(session: Session, task: InspectionTask, check_in: dict[str, Any]) -> dict[str, Any]:
    from cloud.geo.geofence import assess

    site = session.get(Site, task.site_id) if task.site_id else None
    return {**check_in, **assess(check_in, site.longitude if site else None, site.latitude if site else None)}


def _flag_outside_geofence(session: Session, task: InspectionTask, actor: Actor, check_in: dict[str, Any]) -> None:
    """Journal the flag and raise it to supervision as a 督办线索 (kind feedback, channel assessment)."""
    from cloud.workflow.grouping import Incoming, collect

    distance, radius = check_in.get("distance_m"), check_in.get("radius_m")
    title = f"【签到位置异常】检查任务 {task.task_no}：{actor.name} 签到位置距场所 {distance} 米（允许 {radius:g} 米）"
    clue = collect(
        session,
        Incoming(
            kind="feedback",
            channel="assessment",
            category="check_in_location",
            severity="minor",
            title=title[:300],
            at=utcnow(),
            site_id=task.site_id,
            subject_id=task.subject_id,
            summary=title[:500],
            parent_clue_id=task.clue_id,
            ref=f"task:{task.id}",
            extra={"task_id": task.id, "inspector": actor.username, **check_in},
        ),
        actor=actor,
    ).clue
    record(
        session,
        actor,
        "task.check_in_outside_geofence",
        "task",
        task.id or 0,
        {"task_no": task.task_no, "distance_m": distance, "radius_m": radius, "supervision_clue_id": clue.id},
    )
