"""Fetcher plug-ins: something that captures online pages and yields ad and price observations.

A fetcher implements :class:`Fetcher` (``fetch(client) -> FetchResult``) and is registered under a type name
with :func:`register_fetcher`; a source in the sources file (``internet_sources.toml``, see
``firmware-config/samples/internet_sources.toml``) names its type and configuration. :func:`run_source` runs
one source: it journals a :class:`~cloud.internet.models.FetchRun`, keeps every captured page in the evidence
store, records each item through :mod:`cloud.internet.service` (screening, clues) and lists every item it
could not use with the reason — nothing is dropped silently.

The built-in type ``page`` reads one configurable HTML or JSON page (:class:`PageFetcher`).
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Engine
from sqlmodel import Session

from cloud.core.db import utcnow, writer
from cloud.evidence import EvidenceStore
from cloud.internet.htmlextract import check_selector, parse_html, select, select_value
from cloud.internet.models import AdObservationCreate, FetchRun, PriceObservationCreate
from cloud.internet.rules import GoodsCategory
from cloud.internet.service import record_observation, store_capture, strip_money
from cloud.rules.loader import load_model

__all__ = [
    "FETCHER_TYPES",
    "Capture",
    "FetchResult",
    "Fetcher",
    "PageFetcher",
    "SourceConfig",
    "SourcesFile",
    "load_sources",
    "register_fetcher",
    "run_source",
]

log = logging.getLogger(__name__)
MONEY_FIELDS = ("price", "marked_price", "original_price")


# ---------------------------------------------------------------------------------------------- config
class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ItemSpec(_Config):
    """How to find items on the page and read their fields.

    ``select``: HTML — a selector (``div.goods``); JSON — a dotted path to the list (``data.items``).
    ``fields``: our field name → HTML selector (``.name``, ``img@src``) or JSON dotted key (``price.sale``).
    ``defaults``: constant values for fields the page does not show (e.g. ``goods_category = "drug"``).
    """

    select: str = Field(min_length=1, max_length=200)
    fields: dict[str, str] = Field(min_length=1)
    defaults: dict[str, str] = Field(default_factory=dict)


class SourceConfig(_Config):
    name: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    type: str = Field(default="page", description="fetcher plug-in type (FETCHER_TYPES)")
    url: str = Field(pattern=r"^https?://", max_length=1000)
    format: Literal["html", "json"] = "html"
    platform: str = Field(min_length=1, max_length=64)
    shop: str | None = Field(default=None, max_length=200, description="店铺 when the page does not name it")
    subject_uscc: str | None = Field(default=None, max_length=18)
    site_id: str | None = Field(default=None, max_length=64)
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    interval_min: int | None = Field(default=None, ge=5, description="run periodically inside the cloud")
    ads: ItemSpec | None = None
    prices: ItemSpec | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in FETCHER_TYPES:
            raise ValueError(f"unknown fetcher type {value!r}; known: {sorted(FETCHER_TYPES)}")
        return value


class SourcesFile(_Config):
    sources: list[SourceConfig] = Field(default_factory=list)

    def source(self, name: str) -> SourceConfig:
        for src in self.sources:
            if src.name == name:
                return src
        raise KeyError(name)


def load_sources(path: Path) -> SourcesFile:
    """Read and validate a sources file (:class:`~cloud.rules.loader.RuleFileError` on any problem)."""
    sources = load_model(SourcesFile, path)
    for src in sources.sources:
        if src.format == "html":
            for spec in (src.ads, src.prices):
                if spec is not None:
                    for sel in (spec.select, *spec.fields.values()):
                        check_selector(sel)
    names = [s.name for s in sources.sources]
    if len(set(names)) != len(names):
        from cloud.rules.loader import RuleFileError

        raise RuleFileError(
            path, "sources", f"duplicate source names {sorted({n for n in names if names.count(n) > 1})}"
        )
    return sources


# ---------------------------------------------------------------------------------------------- interface
@dataclass(frozen=True, slots=True)
class Capture:
    url: str
    body: bytes
    fetched_at: datetime


@dataclass(slots=True)
class FetchResult:
    """What a fetcher got: the capture of the page, raw items by kind, and items it could not read."""

    capture: Capture
    ads: list[dict[str, Any]] = field(default_factory=list)
    prices: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


class Fetcher(ABC):
    """A fetcher plug-in. ``fetch`` raises :class:`FetchError` (or an ``httpx.HTTPError``) when nothing was got."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config

    @abstractmethod
    def fetch(self, client: httpx.Client) -> FetchResult: ...


class FetchError(RuntimeError):
    pass


FETCHER_TYPES: dict[str, type[Fetcher]] = {}


def register_fetcher(type_name: str) -> Callable[[type[Fetcher]], type[Fetcher]]:
    def deco(cls: type[Fetcher]) -> type[Fetcher]:
        FETCHER_TYPES[type_name] = cls
        return cls

    return deco


# ---------------------------------------------------------------------------------------------- page fetcher
def _dotted(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


@register_fetcher("page")
class PageFetcher(Fetcher):
    """One HTML or JSON page; items and fields located by the source's ``ads`` / ``prices`` specs."""

    def fetch(self, client: httpx.Client) -> FetchResult:
        cfg = self.config
        response = client.get(cfg.url, timeout=cfg.timeout_s, follow_redirects=False)
        if response.status_code != 200:
            raise FetchError(f"HTTP {response.status_code} from {cfg.url}")
        result = FetchResult(Capture(str(response.url), response.content, utcnow()))
        specs = [("ads", cfg.ads), ("prices", cfg.prices)]
        if cfg.format == "json":
            try:
                doc = json.loads(response.content.decode(response.encoding or "utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise FetchError(f"页面不是有效的 JSON / not JSON: {exc}") from None
            for kind, spec in specs:
                if spec is None:
                    continue
                items = _dotted(doc, spec.select)
                if not isinstance(items, list):
                    result.errors.append({"kind": kind, "reason": f"路径 {spec.select} 不是列表 / not a list"})
                    continue
                for item in items:
                    row = {name: _dotted(item, key) for name, key in spec.fields.items()}
                    getattr(result, kind).append({**spec.defaults, **{k: v for k, v in row.items() if v is not None}})
        else:
            root = parse_html(response.text)
            for kind, spec in specs:
                if spec is None:
                    continue
                nodes = select(root, spec.select)
                if not nodes:
                    result.errors.append({"kind": kind, "reason": f"页面上没有找到 {spec.select} / no items found"})
                for node in nodes:
                    row = {name: select_value(node, sel) for name, sel in spec.fields.items()}
                    getattr(result, kind).append({**spec.defaults, **{k: v for k, v in row.items() if v is not None}})
        return result


# ---------------------------------------------------------------------------------------------- running
def _absolute(base: str, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("/"):
        return str(httpx.URL(base).join(value))
    return value


def run_source(
    engine: Engine,
    config: SourceConfig,
    *,
    store: EvidenceStore | None,
    client: httpx.Client | None = None,
    actor: str | None = None,
) -> FetchRun:
    """Run one source end to end; returns the stored :class:`FetchRun` (status ok, partial or failed)."""
    actor = actor or f"fetcher:{config.name}"
    fetcher = FETCHER_TYPES[config.type](config)
    run = FetchRun(source=config.name, url=config.url, started_at=utcnow())
    own = client is None
    http = client or httpx.Client(headers={"User-Agent": "MarketSentinel-monitor/1.0"})
    try:
        result = fetcher.fetch(http)
    except (httpx.HTTPError, FetchError) as exc:
        run.status, run.finished_at = "failed", utcnow()
        run.errors = [{"reason": f"抓取失败 / fetch failed: {exc}"}]
        log.warning("internet source %s failed: %s", config.name, exc)
        with Session(writer(engine)) as session:
            session.add(run)
            session.commit()
            session.refresh(run)
        return run
    finally:
        if own:
            http.close()
    run.capture_sha256 = store_capture(store, result.capture.body)
    errors = list(result.errors)
    with Session(writer(engine)) as session:
        for kind, items in (("ads", result.ads), ("prices", result.prices)):
            for index, raw in enumerate(items):
                row: dict[str, Any] = {
                    "platform": config.platform,
                    "shop": config.shop,
                    "subject_uscc": config.subject_uscc,
                    "site_id": config.site_id,
                    "url": result.capture.url,
                    "captured_at": result.capture.fetched_at,
                    **{k: v for k, v in raw.items() if v not in (None, "")},
                }
                row["url"] = _absolute(result.capture.url, row.get("url"))
                if "image_ref" in row:
                    row["image_ref"] = _absolute(result.capture.url, row["image_ref"])
                try:
                    body: AdObservationCreate | PriceObservationCreate
                    if kind == "ads":
                        body = AdObservationCreate.model_validate({"goods_category": GoodsCategory.ORDINARY, **row})
                    else:
                        row.update({k: strip_money(row[k]) for k in MONEY_FIELDS if k in row})
                        body = PriceObservationCreate.model_validate(row)
                    source = f"fetcher:{config.name}"
                    outcome = record_observation(
                        session, body, source=source, actor=actor, store=store, capture=result.capture.body
                    )
                except ValidationError as exc:
                    err = exc.errors(include_url=False)[0]
                    where = ".".join(str(p) for p in err["loc"])
                    errors.append({"kind": kind, "item": index, "field": where, "reason": f"{where}: {err['msg']}"})
                    continue
                if outcome.duplicate:
                    run.duplicates += 1
                    continue
                if kind == "ads":
                    run.ads += 1
                else:
                    run.prices += 1
                run.hits += len(outcome.hits)
        run.errors = errors
        run.status = "partial" if errors else "ok"
        run.finished_at = utcnow()
        session.add(run)
        session.commit()
        session.refresh(run)
    if errors:
        log.warning("internet source %s: %d item(s) refused", config.name, len(errors))
    return run


# ---------------------------------------------------------------------------------------------- schedule
def sources_file(data_dir: Path, configured: Path | None) -> Path:
    return configured or data_dir / "internet_sources.toml"


def due_sources(engine: Engine, sources: SourcesFile, now: datetime) -> list[SourceConfig]:
    """Sources with ``interval_min`` whose last run started at least that long before ``now`` (or never ran)."""
    from datetime import timedelta

    from sqlmodel import col, func, select

    with Session(engine) as session:
        last = dict(
            session.exec(
                select(FetchRun.source, func.max(col(FetchRun.started_at))).group_by(col(FetchRun.source))
            ).all()
        )
    due: list[SourceConfig] = []
    for src in sources.sources:
        if src.interval_min is None:
            continue
        started = last.get(src.name)
        if started is not None and started.tzinfo is None:
            from datetime import UTC

            started = started.replace(tzinfo=UTC)
        if started is None or now - started >= timedelta(minutes=src.interval_min):
            due.append(src)
    return due


def run_due(engine: Engine, path: Path, store: EvidenceStore | None, now: datetime | None = None) -> list[FetchRun]:
    """One scheduler tick: run every due source of ``path`` (a missing file means no sources)."""
    if not path.exists():
        return []
    sources = load_sources(path)
    return [run_source(engine, src, store=store) for src in due_sources(engine, sources, now or utcnow())]


async def run_periodically(engine: Engine, path: Path, store: EvidenceStore | None, *, tick_s: float = 60.0) -> None:
    """Lifespan task: run due sources every ``tick_s`` (in a worker thread); a bad sources file is logged once."""
    import asyncio

    from cloud.rules.loader import RuleFileError

    failing = False
    while True:
        try:
            await asyncio.to_thread(run_due, engine, path, store)
            failing = False
        except RuleFileError as exc:
            if not failing:
                log.error("internet sources file refused: %s", exc)
            failing = True
        await asyncio.sleep(tick_s)
