"""Load and validate rule-pack data files (TOML) into pydantic models.

Every data file in ``cloud/rules/`` goes through :func:`load_model`: the file is parsed, validated once
against a model with ``extra="forbid"``, and any problem is raised as :class:`RuleFileError` naming the file,
the key path and the reason, e.g. ``deadlines.toml: deadlines.report_verify.days: 应大于 0 / must be > 0``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from protocols.validation import problems

__all__ = [
    "LOCAL_RULES_ENV",
    "RULES_DIR",
    "RuleFileError",
    "RuleModel",
    "load_model",
    "local_rules_dir",
    "read_data_file",
    "rules_path",
]

RULES_DIR = Path(__file__).resolve().parent

M = TypeVar("M", bound=BaseModel)


class RuleModel(BaseModel):
    """Base for every rule-pack model: unknown keys are errors, values are immutable after load."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RuleFileError(ValueError):
    """A rule-pack data file is missing, unparsable or invalid.

    ``file`` is the path, ``key`` the dotted key path inside it (``""`` for the whole file), ``reason`` the
    explanation. ``str(error)`` reads ``<file>: <key>: <reason>``.
    """

    def __init__(self, file: Path | str, key: str, reason: str) -> None:
        self.file = str(file)
        self.key = key
        self.reason = reason
        where = f"{self.file}: {key}" if key else self.file
        super().__init__(f"{where}: {reason}")


#: a county's own directory of rule files; a file found there replaces the packaged one of the same name
LOCAL_RULES_ENV = "SENTINEL_WORKFLOW_RULES_DIR"


def local_rules_dir() -> Path | None:
    value = os.environ.get(LOCAL_RULES_ENV)
    return Path(value) if value else None


def rules_path(name: str, directory: Path | None = None) -> Path:
    """Path of the data file ``name``: in ``directory`` if given, else the county's own copy in
    ``$SENTINEL_WORKFLOW_RULES_DIR`` when it has one, else the packaged ``cloud/rules`` file."""
    if directory is not None:
        return directory / name
    local = local_rules_dir()
    if local is not None and (local / name).is_file():
        return local / name
    return RULES_DIR / name


def read_data_file(path: Path) -> dict[str, Any]:
    """Parse a ``.toml`` file into a dict, converting errors to :class:`RuleFileError`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RuleFileError(path, "", f"cannot read file ({exc.strerror or exc})") from exc
    if path.suffix.lower() != ".toml":
        raise RuleFileError(path, "", f"unsupported file type {path.suffix!r}; rule packs are .toml files")
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RuleFileError(path, "", f"cannot parse TOML: {exc}") from exc
    return data


def _loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts)


def validation_to_rule_error(path: Path | str, exc: ValidationError) -> RuleFileError:
    """Every validation error as one :class:`RuleFileError`: the first one's key, each reason in Chinese (English in
    brackets), further problems named with their keys after it."""
    (key, reason), *more = problems(exc, _loc)
    return RuleFileError(path, key, reason + "".join(f"；{k or '<root>'}: {r}" for k, r in more))


def load_model(model: type[M], path: Path, context: dict[str, Any] | None = None) -> M:
    """Read ``path`` and validate it as ``model``; raise :class:`RuleFileError` on any problem."""
    data = read_data_file(path)
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise validation_to_rule_error(path, exc) from exc
