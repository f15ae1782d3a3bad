"""GSP record profiles (data file ``gsp_profiles.toml``): limits, intervals and retention, validated at load."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROFILES_PATH = Path(__file__).with_name("gsp_profiles.toml")
#: GSP: drug records are kept at least this long (regulations §1 backup/retention [r]).
MIN_DRUG_RETENTION_YEARS = 5


class ProfileError(ValueError):
    pass


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "Asia/Shanghai"
    slack_s: float = Field(default=5, ge=0, le=300)
    humidity_lookback_s: float = Field(default=600, gt=0)
    initial_backfill_s: float = Field(default=30 * 86400, gt=0)
    settle_s: float = Field(default=60, ge=0)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    label: str
    kind: Literal["storage", "transport"]
    temp_min: float | None = None
    temp_max: float | None = None
    humidity_min: float | None = None
    humidity_max: float | None = None
    record_interval_s: int = Field(gt=0, le=86400, description="normal record interval")
    excursion_interval_s: int = Field(gt=0, le=3600, description="record interval while out of range")
    retention_years: int = Field(ge=1, le=100)
    drug: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.excursion_interval_s > self.record_interval_s:
            raise ValueError("excursion_interval_s must not exceed record_interval_s")
        if self.drug and self.retention_years < MIN_DRUG_RETENTION_YEARS:
            raise ValueError(f"drug records must be kept ≥{MIN_DRUG_RETENTION_YEARS} years")
        for lo, hi in ((self.temp_min, self.temp_max), (self.humidity_min, self.humidity_max)):
            if lo is not None and hi is not None and lo >= hi:
                raise ValueError("a minimum must be below its maximum")
        return self


class ProfileFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: Defaults = Defaults()
    profiles: dict[str, Profile]


def parse_profiles(path: Path) -> ProfileFile:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        for name, body in raw.get("profiles", {}).items():
            body.setdefault("name", name)
        return ProfileFile.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc


@lru_cache(maxsize=4)
def _cached(path: Path) -> ProfileFile:
    return parse_profiles(path)


def load_file(path: Path | None = None) -> ProfileFile:
    return _cached(path or PROFILES_PATH)


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    return load_file(path).profiles
