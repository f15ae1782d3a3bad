"""Security settings: environment prefix ``SENTINEL_`` like :class:`cloud.core.config.Settings`.

A separate model so the security knobs live with the mechanisms that use them; the values marked [r] in
``regulations.md`` §6 (lockout threshold, idle timeout …) are defaults here, never literals in code.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SecuritySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SENTINEL_", env_file=".env", env_file_encoding="utf-8", extra="ignore", validate_default=True
    )

    # passwords
    password_min_length: int = Field(default=10, ge=8, le=128, description="最短口令长度")
    password_min_classes: int = Field(default=3, ge=1, le=4, description="大写/小写/数字/符号 至少几类")
    # lockout (等保: 登录失败处理)
    lockout_threshold: int = Field(default=5, ge=1, le=100, description="连续失败次数达到即锁定")
    lockout_minutes: float = Field(default=15.0, gt=0, description="锁定时长（分钟）")
    # sessions
    access_token_minutes_max: int = Field(default=15, ge=1, le=1440, description="访问令牌有效期上限（分钟）")
    refresh_token_hours: float = Field(default=12.0, gt=0, le=24 * 30, description="刷新令牌有效期（小时）")
    idle_timeout_minutes: float = Field(default=30.0, gt=0, description="会话空闲超时（分钟）")
    session_touch_s: float = Field(default=30.0, ge=0, description="会话最近活动时间的写入间隔（秒）")
    # TOTP second factor
    totp_issuer: str = Field(default="Market Sentinel", max_length=64)
    totp_required_roles: list[str] = Field(
        default_factory=list, description="these roles must enrol TOTP (e.g. admin, security_admin, auditor)"
    )
    # scoping
    scope_unassigned_inspectors: bool = Field(
        default=True, description="inspectors without a department see the whole county (small bureaus)"
    )
    # HTTP limits
    max_request_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, description="request body limit")
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="limit on upload paths")
    upload_paths: list[str] = Field(
        default_factory=lambda: ["/api/v1/evidence", "/api/v1/clues/intake/import", "/api/v1/registry/subjects/import"]
    )
    rate_limit_per_minute: int = Field(default=30, ge=1, description="public endpoints, per client address")
    rate_limited_paths: list[str] = Field(
        default_factory=lambda: ["/api/v1/auth/token", "/api/v1/auth/refresh", "/api/v1/notifications/ack"]
    )
    # audit
    audit_retention_days: int = Field(default=183, ge=183, description="journal kept at least this long (≥ 6 months)")
    # dead letters (cloud.retention)
    dead_letter_retention_days: int = Field(default=90, ge=7, le=3650, description="死信保留天数")
    dead_letter_quota_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1024 * 1024, description="死信载荷总量上限；超出时最旧的载荷被清除（记录保留）"
    )
    retention_interval_s: float = Field(default=3600.0, gt=0, description="保留期清理任务的运行间隔（秒）")


@lru_cache
def get_security_settings() -> SecuritySettings:
    return SecuritySettings()
