"""Internet monitoring (互联网监测, standard §6.2): online ads and prices as a clue source.

* ``POST /internet/ads`` · ``POST /internet/prices`` one observation (screened at once; hits become clues of the
  ``internet_monitoring`` channel); ``POST /internet/import?kind=ads|prices`` a CSV file (row/column errors).
* ``GET /internet/ads`` · ``GET /internet/prices`` · ``GET /internet/hits`` (``?clue_id=`` the evidence of a clue).
* ``GET /internet/sources`` the configured fetcher sources; ``POST /internet/sources/{name}/run`` run one now;
  ``GET /internet/runs`` past runs with what they refused.
* ``GET /internet/rules`` the screening rule pack with the citations of each rule.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile
from pydantic import BaseModel
from sqlmodel import col, select

from cloud.api.deps import EngineDep, SessionDep, SettingsDep, StaffUser
from cloud.api.routes.evidence import EvidenceStoreDep
from cloud.api.routes.workflow import ActorDep, WorkflowRoute, require
from cloud.core.config import Settings
from cloud.internet import csv_import
from cloud.internet.fetchers import SourcesFile, load_sources, run_source, sources_file
from cloud.internet.models import (
    AdObservation,
    AdObservationCreate,
    AdObservationPublic,
    FetchRun,
    FetchRunPublic,
    PriceObservation,
    PriceObservationCreate,
    PriceObservationPublic,
    ScreeningHit,
    ScreeningHitPublic,
)
from cloud.internet.rules import cite, screening_rules
from cloud.internet.service import Outcome, record_ad, record_price
from cloud.rules.loader import RuleFileError
from cloud.security.scoping import ScopeDep, county_wide, scope_guard, visible_sites
from cloud.workflow.clues import Clue
from cloud.workflow.service import record
from cloud.workflow.states import Role as Duty

router = APIRouter(
    prefix="/internet", tags=["internet 互联网监测"], route_class=WorkflowRoute, dependencies=[Depends(scope_guard)]
)
MONITOR_DUTIES = (Duty.INTAKE_CLERK, Duty.ANALYST, Duty.SUPERVISOR)


class OutcomePublic(BaseModel):
    kind: str
    observation_id: int
    duplicate: bool
    hits: list[ScreeningHitPublic]
    clue_ids: list[int]


def _outcome(outcome: Outcome) -> OutcomePublic:
    return OutcomePublic(
        kind=outcome.kind,
        observation_id=outcome.observation_id,
        duplicate=outcome.duplicate,
        hits=[ScreeningHitPublic.model_validate(h) for h in outcome.hits],
        clue_ids=outcome.clue_ids,
    )


@router.post("/ads", status_code=201, summary="录入一条网络广告监测记录（即时筛查）")
def post_ad(session: SessionDep, actor: ActorDep, store: EvidenceStoreDep, body: AdObservationCreate) -> OutcomePublic:
    require(actor, *MONITOR_DUTIES, what="录入互联网监测记录")
    outcome = record_ad(session, body, source="api", actor=actor, store=store)
    session.commit()
    return _outcome(outcome)


@router.post("/prices", status_code=201, summary="录入一条网络价格监测记录（即时筛查）")
def post_price(
    session: SessionDep, actor: ActorDep, store: EvidenceStoreDep, body: PriceObservationCreate
) -> OutcomePublic:
    require(actor, *MONITOR_DUTIES, what="录入互联网监测记录")
    outcome = record_price(session, body, source="api", actor=actor, store=store)
    session.commit()
    return _outcome(outcome)


@router.post("/import", summary="导入网络广告或价格监测记录（CSV）")
async def post_import(
    session: SessionDep,
    actor: ActorDep,
    store: EvidenceStoreDep,
    file: Annotated[UploadFile, File(description="CSV（UTF-8 或 GB18030，首行为列名）")],
    kind: Annotated[Literal["ads", "prices"], Query(description="ads 广告 | prices 价格")],
) -> dict[str, Any]:
    require(actor, *MONITOR_DUTIES, what="导入互联网监测记录")
    content = await file.read()
    try:
        report = csv_import.import_csv(session, content, kind, actor=actor, store=store)
    except csv_import.ImportFormatError as exc:
        raise HTTPException(422, str(exc)) from None
    record(
        session,
        actor,
        "internet.imported",
        "import",
        file.filename or "upload",
        {"kind": kind, "rows": report.rows, "recorded": report.recorded, "errors": len(report.errors)},
    )
    session.commit()
    return report.__dict__


@router.get("/ads", summary="网络广告监测记录")
def get_ads(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    shop: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AdObservationPublic]:
    query = select(AdObservation).order_by(col(AdObservation.id).desc()).offset(offset).limit(limit)
    if (sites := visible_sites(session, scope)) is not None:  # jurisdiction: observations of the caller's sites
        query = query.where(col(AdObservation.site_id).in_(sorted(sites)))
    if shop:
        query = query.where(AdObservation.shop == shop)
    return [AdObservationPublic.model_validate(r) for r in session.exec(query)]


@router.get("/prices", summary="网络价格监测记录")
def get_prices(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    shop: str | None = None,
    goods: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PriceObservationPublic]:
    query = select(PriceObservation).order_by(col(PriceObservation.id).desc()).offset(offset).limit(limit)
    if (sites := visible_sites(session, scope)) is not None:
        query = query.where(col(PriceObservation.site_id).in_(sorted(sites)))
    if shop:
        query = query.where(PriceObservation.shop == shop)
    if goods:
        query = query.where(PriceObservation.goods == goods)
    return [PriceObservationPublic.model_validate(r) for r in session.exec(query)]


@router.get("/hits", summary="筛查命中及证据（?clue_id= 某条线索的证据）")
def get_hits(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    clue_id: int | None = None,
    rule_id: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ScreeningHitPublic]:
    query = select(ScreeningHit).order_by(col(ScreeningHit.id).desc()).offset(offset).limit(limit)
    if clue_id is not None:
        query = query.where(ScreeningHit.clue_id == clue_id)
    if rule_id:
        query = query.where(ScreeningHit.rule_id == rule_id)
    where = scope.where(Clue.department_id)
    if where is not None:
        query = query.join(Clue, col(Clue.id) == col(ScreeningHit.clue_id)).where(where)
    return [ScreeningHitPublic.model_validate(h) for h in session.exec(query)]


@router.get("/rules", summary="筛查规则（含法律依据）", dependencies=[county_wide("screening rules (rules file)")])
def get_rules(_: StaffUser) -> dict[str, Any]:
    rules = screening_rules()
    return {
        "version": rules.version,
        "ad_rules": [
            {"id": r.id, "name": r.name, "severity": r.severity, "basis": r.basis, "citations": cite(r.basis)}
            for r in rules.ad_rules
        ],
        "price_rules": [
            {"id": r.id, "name": r.name, "severity": r.severity, "basis": r.basis, "citations": cite(r.basis)}
            for r in rules.price_rules
        ],
        "staples": [s.model_dump() for s in rules.staples],
    }


def sources_path(settings: Settings) -> Any:
    return sources_file(settings.data_dir, settings.internet_sources_file)


def _sources(settings: Settings) -> SourcesFile:
    path = sources_path(settings)
    if not path.exists():
        return SourcesFile()
    try:
        return load_sources(path)
    except RuleFileError as exc:
        raise HTTPException(500, f"监测源配置有误 / bad sources file: {exc}") from None


@router.get(
    "/sources", summary="已配置的监测源（抓取插件）", dependencies=[county_wide("monitoring source configuration")]
)
def get_sources(settings: SettingsDep, _: StaffUser) -> list[dict[str, Any]]:
    return [s.model_dump(mode="json") for s in _sources(settings).sources]


@router.post(
    "/sources/{name}/run",
    summary="立即运行一个监测源",
    dependencies=[county_wide("runs a configured source; what it finds is filtered where it is read")],
)
def post_run(
    session: SessionDep, engine: EngineDep, settings: SettingsDep, actor: ActorDep, store: EvidenceStoreDep, name: str
) -> FetchRunPublic:
    require(actor, *MONITOR_DUTIES, what="运行监测源")
    try:
        source = _sources(settings).source(name)
    except KeyError:
        raise HTTPException(404, f"监测源 {name} 不存在 / no such source") from None
    session.close()  # the run writes in its own transactions (SQLite: release this request's write lock first)
    run = run_source(engine, source, store=store, actor=actor.username)
    return FetchRunPublic.model_validate(run)


@router.get(
    "/runs",
    summary="监测源运行记录（含未能采用的条目及原因）",
    dependencies=[county_wide("run log of the monitoring sources")],
)
def get_runs(
    session: SessionDep,
    _: StaffUser,
    source: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[FetchRunPublic]:
    query = select(FetchRun).order_by(col(FetchRun.id).desc()).limit(limit)
    if source:
        query = query.where(FetchRun.source == source)
    return [FetchRunPublic.model_validate(r) for r in session.exec(query)]
