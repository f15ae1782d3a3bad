"""Record online observations, screen them and turn every hit into a clue (互联网监测 channel).

Every feed (API, CSV import, fetcher plug-ins) ends in :func:`record_ad` / :func:`record_price`. They store the
observation with its capture (the page or the submitted record, in the evidence store by SHA-256), run the one
screening engine, store each hit with its evidence and hand it to clue collection
(:func:`cloud.workflow.grouping.collect`: channel ``internet_monitoring``, kind ``alert``), which folds repeated
hits on one shop into one open clue (``grouping.toml``) and runs analysis on a new clue like on any other.
The same advertisement captured again (same platform, shop, URL, category and text) only counts as seen again:
it does not hit twice. Functions flush, never commit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from cloud.evidence import EvidenceStore
from cloud.internet.models import (
    AdObservation,
    AdObservationCreate,
    PriceObservation,
    PriceObservationCreate,
    ScreeningHit,
)
from cloud.internet.pricing import PriceHit, PricePoint, evaluate, history_days
from cloud.internet.rules import GOODS_LABELS, screening_rules
from cloud.internet.screening import AdHit, screen_ad
from cloud.workflow.clues import SEVERITY_ORDER
from cloud.workflow.grouping import Incoming, collect
from cloud.workflow.service import Actor, record

__all__ = ["CHANNEL", "Outcome", "record_ad", "record_observation", "record_price", "store_capture", "strip_money"]

CHANNEL = "internet_monitoring"
AD_CATEGORY = "online_advertising"
PRICE_CATEGORY = "online_price"


@dataclass(slots=True)
class Outcome:
    kind: str  # ad | price
    observation_id: int
    duplicate: bool = False
    hits: list[ScreeningHit] = field(default_factory=list)
    clue_ids: list[int] = field(default_factory=list)


def _sha(*parts: object) -> str:
    return hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()


def store_capture(store: EvidenceStore | None, data: bytes | None) -> str | None:
    """Put ``data`` into the evidence store; its SHA-256 (None without a store or data)."""
    if store is None or not data:
        return None
    sha = hashlib.sha256(data).hexdigest()
    store.put(sha, data)
    return sha


def _record_capture(body: AdObservationCreate | PriceObservationCreate) -> bytes:
    return json.dumps(body.model_dump(mode="json"), ensure_ascii=False, sort_keys=True).encode()


def _clue(
    session: Session,
    actor: Actor | str,
    *,
    category: str,
    obs_kind: str,
    obs: AdObservation | PriceObservation,
    hit: AdHit | PriceHit,
    title: str,
    evidence: dict[str, Any],
) -> ScreeningHit:
    citations = "；".join(hit.citations)
    description = (
        f"平台：{obs.platform}\n店铺：{obs.shop}\n页面：{obs.url or '—'}\n采集时间：{obs.captured_at.isoformat()}\n"
        f"命中：{hit.rule_name}（{hit.rule_id}）\n证据：{evidence['highlight']}\n依据：{citations}"
    )
    result = collect(
        session,
        Incoming(
            kind="alert",
            channel=CHANNEL,
            category=category,
            severity=hit.severity,
            title=title,
            at=obs.captured_at,
            site_id=obs.site_id,
            rule_id=hit.rule_id,
            summary=str(evidence["highlight"])[:500],
            description=description,
            ref=f"{obs_kind}:{obs.id}",
            respondent_uscc=obs.subject_uscc,
            respondent_name=obs.shop,
            extra=evidence,
        ),
        actor=actor,
    )
    assert obs.id is not None
    row = ScreeningHit(
        observation_kind=obs_kind,
        observation_id=obs.id,
        rule_id=hit.rule_id,
        rules_version=screening_rules().version,
        severity=hit.severity,
        matched=(hit.matched if isinstance(hit, AdHit) else str(evidence.get("price", "")))[:500],
        span_start=hit.start if isinstance(hit, AdHit) else None,
        span_end=hit.end if isinstance(hit, AdHit) else None,
        evidence=evidence,
        clue_id=result.clue.id,
    )
    session.add(row)
    session.flush()
    return row


def _where(obs: AdObservation | PriceObservation) -> dict[str, Any]:
    return {
        "platform": obs.platform,
        "shop": obs.shop,
        "url": obs.url,
        "captured_at": obs.captured_at.isoformat(),
        "capture_sha256": obs.capture_sha256,
    }


def record_ad(
    session: Session,
    body: AdObservationCreate,
    *,
    source: str,
    actor: Actor | str,
    store: EvidenceStore | None = None,
    capture: bytes | None = None,
) -> Outcome:
    """Store one advertisement observation, screen it and collect each hit into a clue."""
    fingerprint = _sha(body.platform, body.shop, body.url, body.goods_category, body.text)
    existing = session.exec(select(AdObservation).where(AdObservation.fingerprint == fingerprint)).first()
    if existing is not None:
        existing.seen_count += 1
        existing.last_seen_at = max(existing.last_seen_at, body.captured_at)
        session.add(existing)
        session.flush()
        assert existing.id is not None
        return Outcome("ad", existing.id, duplicate=True)
    obs = AdObservation(
        **body.model_dump(),
        source=source,
        fingerprint=fingerprint,
        capture_sha256=store_capture(store, capture or _record_capture(body)),
        last_seen_at=body.captured_at,
    )
    session.add(obs)
    session.flush()
    assert obs.id is not None
    outcome = Outcome("ad", obs.id)
    # the most severe hit first: it creates the clue, so the analysis on creation sees the clue's real severity
    for hit in sorted(screen_ad(obs.text, obs.goods_category), key=lambda h: SEVERITY_ORDER.index(h.severity)):
        evidence = {
            **hit.evidence(),
            **_where(obs),
            "observation": {"kind": "ad", "id": obs.id},
            "text": obs.text,
            "image_ref": obs.image_ref,
            "goods_category": str(obs.goods_category),
        }
        label = GOODS_LABELS.get(str(obs.goods_category), "")
        title = f"【互联网监测·网络广告】{obs.shop}（{obs.platform}）{label}广告：{hit.rule_name}“{hit.matched}”"
        row = _clue(
            session, actor, category=AD_CATEGORY, obs_kind="ad", obs=obs, hit=hit, title=title, evidence=evidence
        )
        outcome.hits.append(row)
    _journal(session, actor, outcome, source)
    return outcome


def record_price(
    session: Session,
    body: PriceObservationCreate,
    *,
    source: str,
    actor: Actor | str,
    store: EvidenceStore | None = None,
    capture: bytes | None = None,
) -> Outcome:
    """Store one price observation, evaluate the price rules against the shop's history and collect each hit."""
    fingerprint = _sha(body.platform, body.shop, body.goods, body.spec, body.price, body.captured_at.isoformat())
    existing = session.exec(select(PriceObservation).where(PriceObservation.fingerprint == fingerprint)).first()
    if existing is not None:
        assert existing.id is not None
        return Outcome("price", existing.id, duplicate=True)
    from datetime import timedelta

    since = body.captured_at - timedelta(days=history_days())
    history = [
        PricePoint(p.price, p.captured_at)
        for p in session.exec(
            select(PriceObservation).where(
                PriceObservation.platform == body.platform,
                PriceObservation.shop == body.shop,
                PriceObservation.goods == body.goods,
                PriceObservation.spec == body.spec,
                col(PriceObservation.captured_at) >= since,
                col(PriceObservation.captured_at) < body.captured_at,
            )
        )
    ]
    obs = PriceObservation(
        **body.model_dump(),
        source=source,
        fingerprint=fingerprint,
        capture_sha256=store_capture(store, capture or _record_capture(body)),
    )
    session.add(obs)
    session.flush()
    assert obs.id is not None
    outcome = Outcome("price", obs.id)
    hits = evaluate(
        goods=obs.goods,
        spec=obs.spec,
        price=obs.price,
        marked_price=obs.marked_price,
        original_price=obs.original_price,
        captured_at=obs.captured_at,
        history=history,
    )
    for hit in sorted(hits, key=lambda h: SEVERITY_ORDER.index(h.severity)):
        evidence = {**hit.evidence(), **_where(obs), "observation": {"kind": "price", "id": obs.id}, "goods": obs.goods}
        title = f"【互联网监测·网络价格】{obs.shop}（{obs.platform}）：{hit.rule_name} {hit.matched}"
        outcome.hits.append(
            _clue(
                session,
                actor,
                category=PRICE_CATEGORY,
                obs_kind="price",
                obs=obs,
                hit=hit,
                title=title,
                evidence=evidence,
            )
        )
    _journal(session, actor, outcome, source)
    return outcome


def record_observation(
    session: Session,
    body: AdObservationCreate | PriceObservationCreate,
    *,
    source: str,
    actor: Actor | str,
    store: EvidenceStore | None = None,
    capture: bytes | None = None,
) -> Outcome:
    """:func:`record_ad` or :func:`record_price` in a savepoint of its own (bulk feeds: one bad item never
    undoes the others)."""
    with session.begin_nested():
        if isinstance(body, AdObservationCreate):
            return record_ad(session, body, source=source, actor=actor, store=store, capture=capture)
        return record_price(session, body, source=source, actor=actor, store=store, capture=capture)


def strip_money(value: object) -> object:
    """``¥1,234.50元`` → ``1234.50`` (the Decimal fields validate the rest)."""
    if isinstance(value, str):
        return value.replace("¥", "").replace("￥", "").replace("元", "").replace(",", "").strip()
    return value


def _journal(session: Session, actor: Actor | str, outcome: Outcome, source: str) -> None:
    outcome.clue_ids = sorted({h.clue_id for h in outcome.hits if h.clue_id is not None})
    record(
        session,
        actor,
        f"internet.{outcome.kind}_recorded",
        f"internet_{outcome.kind}",
        outcome.observation_id,
        {"source": source, "hits": [h.rule_id for h in outcome.hits], "clue_ids": outcome.clue_ids},
    )
