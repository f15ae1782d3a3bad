"""Cloud settings: one pydantic-settings model, environment prefix ``SENTINEL_``.

Every value can be set from the environment (``SENTINEL_DATABASE_URL``, ``SENTINEL_MQTT_HOST`` …) or a
``.env`` file in the working directory. Nested groups are not used on purpose: one flat name per knob is
easier to set in a systemd unit or a container.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TelemetryBackend = Literal["sqlite", "postgres", "influx"]
MqttProtocol = Literal["auto", "5", "3.1.1"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SENTINEL_", env_file=".env", env_file_encoding="utf-8", extra="ignore", validate_default=True
    )

    # storage
    data_dir: Path = Field(default=Path("data"), description="holds sentinel.db, the JWT secret, evidence files")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the business DB; default sqlite:///<data_dir>/sentinel.db"
    )
    telemetry_backend: TelemetryBackend = Field(default="sqlite", description="where readings are stored")
    telemetry_url: str | None = Field(default=None, description="URL of an external telemetry store (influx)")
    telemetry_token: SecretStr | None = None
    telemetry_org: str = "sentinel"
    telemetry_bucket: str = "sentinel"
    telemetry_influx_write: Literal["v2", "v1"] = Field(default="v2", description="v1 only for InfluxDB 1.6/1.7")
    telemetry_influx_read: Literal["influxql", "victoriametrics"] = Field(default="influxql", description="query path")
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0)
    map_tile_key: SecretStr | None = Field(
        default=None, description="key put into {key} of geo.toml [map] tile_url (e.g. the 天地图 tk)"
    )

    # MQTT (ingest)
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False
    mqtt_tls_ca: Path | None = None
    mqtt_protocol: MqttProtocol = Field(
        default="auto", description="auto: MQTT 5 with shared subscriptions, 3.1.1 plain subscriptions if refused"
    )
    mqtt_share_group: str | None = Field(
        default="ingest", description="shared-subscription group ($share/<group>/…); empty = plain subscriptions"
    )
    mqtt_client_id: str = Field(default="sentinel-ingest-1", description="fixed id: the broker keeps the session")
    mqtt_session_expiry_s: int = Field(
        default=7 * 86400, ge=1, description="MQTT 5 session expiry; 0 would drop queued messages on reconnect"
    )
    mqtt_keepalive_s: int = Field(default=30, ge=5)
    ingest_enabled: bool = Field(default=True, description="run the ingest inside `sentinel cloud serve`")
    ingest_max_batch: int = Field(default=500, ge=1, description="messages per DB transaction at most")
    ingest_max_wait_ms: int = Field(default=5, ge=0, description="linger this long once for more messages to batch")
    ingest_pipeline: bool = Field(
        default=True,
        description="validate the next batch in its own thread while the previous one commits (acks still only "
        "after commit); false: receive, validate, commit, ack one batch after the other",
    )

    # presence
    presence_enabled: bool = True
    internet_sources_file: Path | None = Field(
        default=None, description="internet-monitoring sources (TOML); default <data_dir>/internet_sources.toml"
    )
    gsp_derive_interval_s: float = Field(default=60.0, gt=0, description="GSP record derivation period (seconds)")
    follow_up_interval_s: float = Field(
        default=60.0, gt=0, description="how often the deadline scheduler looks for rectification deadlines due (s)"
    )
    presence_check_s: float = Field(default=10.0, gt=0, description="how often silence is checked")
    site_offline_after_s: float = Field(default=180.0, gt=0, description="site silent longer → site_offline")
    sensor_stale_after_s: float = Field(default=900.0, gt=0, description="sensor silent longer → sensor_stale")
    clock_skew_max_s: float = Field(
        default=120.0, gt=0, description="edge clock offset beyond this → flagged; data stamped further ahead refused"
    )
    clock_behind_max_s: float = Field(
        default=366 * 86400.0,
        gt=3600,
        description="data stamped further before receipt than any edge backlog can be (a dead RTC) → refused",
    )

    # several instances (cloud.core.leases): background work runs on the holder of its lease
    lease_ttl_s: float = Field(
        default=15.0, ge=1.0, le=600.0, description="a dead holder's lease expires after this; takeover ≤ 4/3 × it"
    )
    instance_id: str | None = Field(default=None, max_length=120, description="default: <host>:<pid>:<random>")

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    jwt_secret: SecretStr | None = Field(default=None, description="default: generated once into data_dir")
    fleet_command_key: Path | None = Field(
        default=None, description="Ed25519 key (PKCS#8 PEM) signing edge commands; default data_dir/fleet-command.key"
    )
    fleet_command_poll_s: float = Field(
        default=2.0, gt=0, description="how often the ingest looks for new commands to publish to online agents"
    )
    fleet_command_ttl_s: float = Field(
        default=7 * 86400, gt=0, description="a command not answered within this expires (with the reason)"
    )
    jwt_algorithm: str = "HS256"
    access_token_minutes: int = Field(default=60, ge=1)
    device_token_days: int = Field(default=365, ge=1)
    admin_username: str = "admin"
    admin_password: SecretStr | None = Field(default=None, description="default: generated and printed once")
    cors_origins: list[str] = Field(default_factory=list)
    api_certfile: Path | None = Field(default=None, description="PEM server certificate (chain): serve HTTPS")
    api_keyfile: Path | None = Field(default=None, description="PEM private key of api_certfile")

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if (self.api_certfile is None) != (self.api_keyfile is None):
            raise ValueError("api_certfile and api_keyfile go together (HTTPS needs both)")
        for path in (self.api_certfile, self.api_keyfile):
            if path is not None and not path.is_file():
                raise ValueError(f"{path}: no such file (api_certfile / api_keyfile)")
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'sentinel.db'}"
        return self

    @property
    def db_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def jwt_key(self) -> str:
        """The JWT signing secret: from the environment, else generated once into ``data_dir/jwt.secret`` (0600)."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.ensure_data_dir() / "jwt.secret"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its secret
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once); tests build their own :class:`Settings` instead."""
    return Settings()
