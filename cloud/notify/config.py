"""Notification settings (environment) and rule files (routing.toml, escalation.toml), validated once at load."""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.core.config import Settings
from cloud.rules.loader import RuleModel, load_model, rules_path

ChannelName = Literal["inapp", "mqtt", "webhook", "email"]
CHANNELS: tuple[ChannelName, ...] = ("inapp", "mqtt", "webhook", "email")
RecipientKind = Literal["on_duty", "site_contacts", "assignee", "supervisors", "admins"]
Level = Literal["supervisor", "head"]
AckRank = Literal["inspector", "supervisor", "head"]
SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2, "warning": 3, "indeterminate": 4}


class NotifySettings(BaseSettings):
    """``SENTINEL_NOTIFY_*`` environment knobs of the notification service."""

    model_config = SettingsConfigDict(env_prefix="SENTINEL_NOTIFY_", env_file=".env", extra="ignore")

    enabled: bool = Field(default=True, description="run the notification + supervision followers in `serve`")
    poll_s: float = Field(default=0.1, gt=0, le=10, description="journal poll interval")
    tick_s: float = Field(default=0.5, gt=0, le=60, description="escalation / storm-summary check interval")
    rules_dir: Path | None = Field(default=None, description="directory with routing.toml/escalation.toml overrides")
    public_base_url: str = Field(default="http://127.0.0.1:8000", description="base of signed ack links")
    link_secret: SecretStr | None = Field(default=None, description="default: derived from the JWT secret")
    link_ttl_s: int = Field(default=7 * 86400, ge=60)
    shared_channels: list[str] = Field(
        default_factory=lambda: ["webhook"],
        description="channels whose messages others can read (group robots): their ack links need the recipient's "
        "own proof (password or personal ack code)",
    )
    link_proof_attempts: int = Field(default=5, ge=1, le=20, description="wrong proofs before a link is spent")
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_from: str = "sentinel@localhost"
    mqtt_enabled: bool = True
    mqtt_topic_prefix: str = Field(default="ms/v1/notify", description="per-person topic: <prefix>/<username>")
    mqtt_client_id: str = "sentinel-notify-1"

    def secret(self, settings: Settings) -> bytes:
        if self.link_secret is not None:
            return self.link_secret.get_secret_value().encode()
        return hmac.new(settings.jwt_key().encode(), b"notify-ack-links", hashlib.sha256).digest()


class When(RuleModel):
    action: list[str] = Field(default_factory=list)
    category: list[str] = Field(default_factory=list)
    severity_at_least: str | None = None
    rule_id: list[str] = Field(default_factory=list)
    site_id: list[str] = Field(default_factory=list)
    site_category: list[str] = Field(default_factory=list, description="registry category of the site (drug …)")
    channel_not: list[str] = Field(default_factory=list, description="skip clues from these intake channels")

    @model_validator(mode="after")
    def _severity(self) -> When:
        if self.severity_at_least is not None and self.severity_at_least not in SEVERITY_RANK:
            raise ValueError(f"unknown severity {self.severity_at_least!r}; known: {list(SEVERITY_RANK)}")
        return self

    def matches(self, action: str, facts: dict[str, str | None]) -> bool:
        def glob(patterns: list[str], value: str | None) -> bool:
            return not patterns or (value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns))

        if self.action and action not in self.action:
            return False
        if self.severity_at_least is not None:
            sev = facts.get("severity")
            if sev is None or SEVERITY_RANK.get(sev, 99) > SEVERITY_RANK[self.severity_at_least]:
                return False
        if self.channel_not and facts.get("channel") in self.channel_not:
            return False
        return (
            glob(self.category, facts.get("category"))
            and glob(self.rule_id, facts.get("rule_id"))
            and glob(self.site_id, facts.get("site_id"))
            and glob(self.site_category, facts.get("site_category"))
        )


class Route(RuleModel):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    when: When = Field(default_factory=When)
    recipients: list[RecipientKind] = Field(min_length=1)
    designation: str = "site_contact"
    min_recipients: int = Field(default=1, ge=0, le=100)
    min_designated: int = Field(
        default=0, ge=0, le=100, description="designated site contacts required (bureau staff on duty do not count)"
    )
    channels: list[ChannelName] = Field(default_factory=lambda: list(CHANNELS))
    escalation: str = "default"
    storm_exempt: bool = Field(default=False, description="never folded into a summary nor rate-limited")


class AckRules(RuleModel):
    """Who may acknowledge an incident (stop its escalation): its recipients, and the people of the incident's
    department whose contact rank is listed (optionally only while on the duty roster)."""

    id: str = "ack_personal"
    zh: str = "只有该通知的接收人或其所属部门负责人可以确认收到"
    en: str = "only a recipient of this incident's notifications or the head of its department may acknowledge it"
    ranks: list[AckRank] = Field(
        default_factory=lambda: list[AckRank](["head"]),
        description="contact ranks of the incident's department who may also ack",
    )
    on_duty_only: bool = Field(default=False, description="those ranks only while on the department's roster")


class RoutingRules(RuleModel):
    timezone: str = "Asia/Shanghai"
    events: list[str] = Field(min_length=1)
    default_department: str = ""
    gsp_min_recipients: int = Field(default=3, ge=1)
    gsp_categories: list[str] = Field(default_factory=lambda: ["drug_*"])
    gsp_site_categories: list[str] = Field(default_factory=lambda: ["drug"])
    routes: list[Route] = Field(min_length=1)
    ack: AckRules = Field(default_factory=AckRules)

    @model_validator(mode="after")
    def _gsp(self) -> RoutingRules:
        ids = [r.id for r in self.routes]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate route ids in {ids}")
        for route in self.routes:
            drug = any(
                fnmatch.fnmatchcase(c, g) or c == g for c in route.when.category for g in self.gsp_categories
            ) or any(c in self.gsp_site_categories for c in route.when.site_category)
            if not drug:
                continue
            need = self.gsp_min_recipients
            if route.min_recipients < need or route.min_designated < need or "site_contacts" not in route.recipients:
                raise ValueError(
                    f"route {route.id!r}: 药品储存报警须通知至少 {need} 名企业指定人员（不含值班执法人员）(GSP) / "
                    f"drug alarms need site_contacts with min_designated >= {need} and min_recipients >= {need} "
                    f"(got {route.min_designated} / {route.min_recipients})"
                )
        return self

    def route_for(self, action: str, facts: dict[str, str | None]) -> Route | None:
        for route in self.routes:
            if route.when.matches(action, facts):
                return route
        return None


class EscalationLevel(RuleModel):
    after_s: float = Field(gt=0)
    to: Level


class Sla(RuleModel):
    name: str
    within_s: float = Field(gt=0, description="the limit when the site's area class has none of its own")
    within_s_by_area: dict[str, float] = Field(
        default_factory=dict, description="limit per area class of the site (areas.toml), e.g. city 1800"
    )
    met_by: list[str] = Field(min_length=1)
    breach_to: Level = "head"
    clue_on_breach: bool = Field(default=False, description="a breach also raises a supervision clue (督办线索)")

    def limit_s(self, area: str | None) -> float:
        return self.within_s_by_area.get(area or "", self.within_s)


class AreaAssignment(RuleModel):
    class_: str = Field(alias="class", min_length=1, max_length=32)
    departments: list[str] = Field(default_factory=list, description="department code globs")
    sites: list[str] = Field(default_factory=list, description="site id globs")


class AreaRules(RuleModel):
    """areas.toml: which area class (city / elsewhere …) a site belongs to."""

    default: str = Field(default="city", description="class of an unlisted site (the stricter limit)")
    classes: dict[str, str] = Field(default_factory=lambda: {"city": "城区", "elsewhere": "其他地区"})
    assign: list[AreaAssignment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known(self) -> AreaRules:
        for name in [self.default, *(a.class_ for a in self.assign)]:
            if name not in self.classes:
                raise ValueError(f"unknown area class {name!r} (classes: {', '.join(self.classes)})")
        return self

    def class_of(self, site_id: str | None, department: str | None) -> str:
        for entry in self.assign:
            if (site_id and any(fnmatch.fnmatchcase(site_id, g) for g in entry.sites)) or (
                department and any(fnmatch.fnmatchcase(department, g) for g in entry.departments)
            ):
                return entry.class_
        return self.default


class Policy(RuleModel):
    levels: list[EscalationLevel] = Field(default_factory=list)
    sla: Sla | None = None

    @model_validator(mode="after")
    def _increasing(self) -> Policy:
        times = [lv.after_s for lv in self.levels]
        if times != sorted(times):
            raise ValueError("escalation levels must have increasing after_s")
        return self


class StormRules(RuleModel):
    fold_window_s: float = Field(default=86400, gt=0)
    rate_per_recipient: int = Field(default=20, ge=1)
    rate_window_s: float = Field(default=60, gt=0)
    mass_threshold: int = Field(default=30, ge=1)
    mass_window_s: float = Field(default=60, gt=0)
    summary_flush_s: float = Field(default=30, gt=0)


class DeliveryRules(RuleModel):
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=8, ge=1, le=100)
    timeout_s: float = Field(default=5.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=256)
    claim_expiry_s: float = Field(
        default=30.0,
        gt=0,
        description="a send claimed by a lease holder that has since died is sent again (same Idempotency-Key) once "
        "its claim is this old; never less than the send's own bound (2 × timeout_s) plus one second",
    )


class EscalationRules(RuleModel):
    policies: dict[str, Policy]
    storm: StormRules = Field(default_factory=StormRules)
    delivery: DeliveryRules = Field(default_factory=DeliveryRules)


class NotifyRules(RuleModel):
    routing: RoutingRules
    escalation: EscalationRules
    areas: AreaRules = Field(default_factory=AreaRules)

    @model_validator(mode="after")
    def _policies_exist(self) -> NotifyRules:
        for route in self.routing.routes:
            if route.escalation not in self.escalation.policies:
                raise ValueError(f"route {route.id!r}: unknown escalation policy {route.escalation!r}")
        for name, policy in self.escalation.policies.items():
            unknown = set(policy.sla.within_s_by_area if policy.sla else ()) - set(self.areas.classes)
            if unknown:
                raise ValueError(f"policy {name!r}: sla.within_s_by_area names unknown area classes {sorted(unknown)}")
        return self

    def policy(self, name: str) -> Policy:
        return self.escalation.policies.get(name) or Policy()


def load_rules(directory: Path | None = None) -> NotifyRules:
    """Load and cross-check routing.toml, escalation.toml and areas.toml (``RuleFileError``: file, key, reason)."""
    from cloud.rules.loader import RuleFileError

    routing_file = rules_path("routing.toml", directory)
    escalation_file = rules_path("escalation.toml", directory)
    routing = load_model(RoutingRules, routing_file)
    escalation = load_model(EscalationRules, escalation_file)
    areas_file = rules_path("areas.toml", directory)
    areas = load_model(AreaRules, areas_file if areas_file.is_file() else rules_path("areas.toml"))
    try:
        return NotifyRules(routing=routing, escalation=escalation, areas=areas)
    except ValueError as exc:
        raise RuleFileError(routing_file, "routes", str(exc)) from exc
