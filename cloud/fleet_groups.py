"""Group commands (issue 15): one request to many agents, fanned out into one tracked command per agent.

A target names the agents by what an operator knows them by (:class:`GroupTarget`): an explicit list
(``site/agent``), every agent of a site, of a domain (site ``category``: drug / food / special_equipment) or of a
township or department (a department id: its sites and those of its sub-departments). The agents are those the
cloud knows (their presence rows: an agent that never connected is not part of any group but an explicit list,
which may name one not yet seen: its command waits for it). The group row keeps the target, who, when and why;
each per-agent command is a normal :class:`~cloud.fleet_commands.FleetCommand` (signed for its own target) with
the group's id, so delivery, retries, expiry and results are the same as for one agent.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from pydantic import model_validator
from sqlalchemy import JSON
from sqlmodel import Field, Session, SQLModel, col, select

from cloud import journal
from cloud.core.db import UTCDateTime, utcnow
from cloud.fleet_commands import (
    NAME_LABELS,
    OPEN_STATES,
    STATE_LABELS,
    CommandError,
    FleetCommand,
    FleetCommandPublic,
    create_command,
)
from cloud.labels import DOMAIN_LABELS
from cloud.presence import AgentPresence
from cloud.registry.models import Department, Site
from cloud.signing import SigningKey
from protocols.messages import CommandName

MAX_GROUP_AGENTS = 5000


class GroupTarget(SQLModel):
    """Exactly one way of naming the agents."""

    agents: list[str] | None = Field(default=None, max_length=MAX_GROUP_AGENTS, description="['site/agent', …]")
    site_id: str | None = Field(default=None, max_length=64, description="every agent of this site")
    category: str | None = Field(default=None, max_length=32, description="every agent of sites of this domain")
    department_id: int | None = Field(default=None, ge=1, description="sites of this department and below")

    @model_validator(mode="after")
    def _one(self) -> GroupTarget:
        given = [k for k in ("agents", "site_id", "category", "department_id") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("目标须且只须给出一种：agents、site_id、category 或 department_id")
        return self

    def describe(self, session: Session | None = None) -> str:
        """The target in words (names, not codes, when ``session`` can look them up)."""
        if self.agents is not None:
            return f"指定 {len(self.agents)} 台代理"
        if self.site_id is not None:
            site = session.get(Site, self.site_id) if session is not None else None
            return f"场所「{site.name}」的全部代理" if site is not None else f"场所 {self.site_id} 的全部代理"
        if self.category is not None:
            return f"{DOMAIN_LABELS.get(self.category, self.category)}领域的全部代理"
        dep = session.get(Department, self.department_id) if session is not None else None
        name = f"「{dep.name}」" if dep is not None else f" #{self.department_id} "
        return f"部门{name}及下级部门的全部代理"


class FleetCommandGroup(SQLModel, table=True):
    __tablename__ = "fleet_command_group"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=32)
    target: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    target_label: str = Field(max_length=200)
    created_by: str = Field(max_length=64)
    why: str = Field(max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime)


class StateCount(SQLModel):
    state: str
    label: str
    count: int


class GroupProgress(SQLModel):
    id: str
    name: str
    name_label: str
    target_label: str
    created_by: str
    why: str
    created_at: datetime
    total: int
    counts: dict[str, int] = Field(description="state → number of agents")
    state_counts: list[StateCount] = Field(description="the same, with the Chinese state labels, in state order")
    open: int
    rolled_back: int
    finished: bool
    summary: str
    commands: list[FleetCommandPublic]


def _department_ids(session: Session, root: int) -> set[int]:
    children: dict[int | None, list[int]] = {}
    for dep in session.exec(select(Department)):
        if dep.id is not None:
            children.setdefault(dep.parent_id, []).append(dep.id)
    out, todo = set(), [root]
    while todo:
        current = todo.pop()
        if current not in out:
            out.add(current)
            todo.extend(children.get(current, []))
    return out


def resolve_targets(session: Session, target: GroupTarget) -> list[tuple[str, str]]:
    """The (site, agent) pairs a target names, sorted, without repeats."""
    if target.agents is not None:
        pairs: set[tuple[str, str]] = set()
        for item in target.agents:
            site_id, sep, agent_id = item.partition("/")
            if not sep or not site_id or not agent_id or "/" in agent_id:
                raise CommandError(f"代理须写作「场所/代理」：{item!r}")
            pairs.add((site_id, agent_id))
        return sorted(pairs)
    sites = select(Site.site_id)
    if target.site_id is not None:
        sites = sites.where(Site.site_id == target.site_id)
    elif target.category is not None:
        sites = sites.where(Site.category == target.category)
    elif target.department_id is not None:
        if session.get(Department, target.department_id) is None:
            raise CommandError(f"部门 #{target.department_id} 不存在")
        sites = sites.where(col(Site.department_id).in_(_department_ids(session, target.department_id)))
    site_ids = set(session.exec(sites))
    if target.site_id is not None and not site_ids:
        site_ids = {target.site_id}  # a site not in the registry (yet) but with a connected agent
    rows = session.exec(select(AgentPresence).where(col(AgentPresence.site_id).in_(site_ids)))
    return sorted((r.site_id, r.agent_id) for r in rows)


def create_group(
    session: Session,
    key: SigningKey,
    *,
    target: GroupTarget,
    name: CommandName,
    payload: dict[str, Any],
    actor: str,
    why: str,
    ttl: timedelta,
    now: datetime | None = None,
) -> FleetCommandGroup:
    """Resolve the target and create one command per agent (all or nothing; the caller commits)."""
    agents = resolve_targets(session, target)
    if not agents:
        raise CommandError(f"{target.describe(session)}：没有已知的边缘代理")
    if len(agents) > MAX_GROUP_AGENTS:
        raise CommandError(f"{len(agents)} 台代理超过一次下发的上限 {MAX_GROUP_AGENTS}")
    now = now or utcnow()
    group = FleetCommandGroup(
        id=uuid.uuid4().hex,
        name=name.value,
        target=target.model_dump(exclude_none=True),
        target_label=target.describe(session),
        created_by=actor,
        why=why,
        created_at=now,
    )
    session.add(group)
    for site_id, agent_id in agents:
        create_command(
            session,
            key,
            site_id=site_id,
            agent_id=agent_id,
            name=name,
            payload=payload,
            actor=actor,
            why=why,
            ttl=ttl,
            now=now,
            group_id=group.id,
        )
    journal.append(
        session,
        actor=actor,
        action="fleet.group_created",
        target_type="fleet_group",
        target_id=group.id,
        payload={"name": name.value, "target": group.target, "agents": len(agents), "why": why},
        ts=now,
    )
    session.flush()
    return group


def group_progress(session: Session, group: FleetCommandGroup) -> GroupProgress:
    rows = list(
        session.exec(
            select(FleetCommand)
            .where(FleetCommand.group_id == group.id)
            .order_by(col(FleetCommand.site_id), col(FleetCommand.agent_id))
        )
    )
    counts = Counter(r.state for r in rows)
    open_count = sum(counts[s] for s in OPEN_STATES)
    rolled_back = sum(1 for r in rows if r.rolled_back)
    parts = [f"{STATE_LABELS[s]} {n}" for s, n in sorted(counts.items())]
    if rolled_back:
        parts.append(f"其中自动回滚 {rolled_back}")
    return GroupProgress(
        id=group.id,
        name=group.name,
        name_label=NAME_LABELS.get(group.name, group.name),
        target_label=group.target_label,
        created_by=group.created_by,
        why=group.why,
        created_at=group.created_at,
        total=len(rows),
        counts=dict(counts),
        state_counts=[StateCount(state=s, label=STATE_LABELS[s], count=counts[s]) for s in STATE_LABELS if counts[s]],
        open=open_count,
        rolled_back=rolled_back,
        finished=open_count == 0,
        summary=f"共 {len(rows)} 台：" + "，".join(parts),
        commands=[FleetCommandPublic.of(r) for r in rows],
    )


def list_groups(session: Session, limit: int = 50) -> list[FleetCommandGroup]:
    return list(session.exec(select(FleetCommandGroup).order_by(col(FleetCommandGroup.created_at).desc()).limit(limit)))
