"""Law library, inspection-item catalogue and violation grades (standard §8.5.1), loaded and cross-checked.

``load_catalogue()`` reads ``laws.toml``, ``checklist.toml`` and ``violation_grades.toml``, validates each
(``extra="forbid"``) and then checks every reference between them; any problem is a
:class:`~cloud.rules.loader.RuleFileError` naming the file, the key and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cloud.rules.loader import RuleFileError, RuleModel, load_model, rules_path

__all__ = [
    "Article",
    "Catalogue",
    "Checklist",
    "ChecklistItem",
    "Domain",
    "Finding",
    "FindingDisposal",
    "GradeDisposal",
    "Law",
    "LawLibrary",
    "LegalRef",
    "ViolationGrade",
    "ViolationGrades",
    "chinese_number",
    "load_catalogue",
    "parse_ref",
]

_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """1..9999 in Chinese numerals as used for article numbers: 10 → 十, 33 → 三十三, 105 → 一百零五."""
    if not 0 < n < 10000:
        raise ValueError("article numbers are 1..9999")
    units = [(1000, "千"), (100, "百"), (10, "十")]
    out, zero, started = "", False, False
    for value, name in units:
        digit, n = divmod(n, value)
        if digit:
            if zero:
                out += "零"
            out += ("" if (value == 10 and digit == 1 and not started) else _DIGITS[digit]) + name
            started, zero = True, False
        elif started:
            zero = True
    if n:
        out += ("零" if zero else "") + _DIGITS[n]
    return out


# ---------------------------------------------------------------------------------------------------------
# law library
# ---------------------------------------------------------------------------------------------------------
class Article(RuleModel):
    no: int | None = Field(default=None, ge=1, le=9999)
    key: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,40}$")
    label: str | None = Field(default=None, max_length=60)
    wording: Literal["verified", "recalled", "paraphrase"]
    verified_on: str | None = None
    text: str = Field(min_length=4, max_length=2000)

    @model_validator(mode="after")
    def _identified(self) -> Article:
        if self.no is None and (self.key is None or self.label is None):
            raise ValueError("an article without `no` needs `key` and `label`")
        if self.wording == "verified" and not self.verified_on:
            raise ValueError("wording = 'verified' needs verified_on")
        return self

    @property
    def ref_key(self) -> str:
        return self.key if self.key is not None else str(self.no)

    @property
    def title(self) -> str:
        """``第三十三条`` or the label of an un-numbered article."""
        if self.no is not None:
            return f"第{chinese_number(self.no)}条"
        assert self.label is not None
        return self.label


class Law(RuleModel):
    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    title: str = Field(min_length=2, max_length=100)
    short: str = Field(min_length=2, max_length=60)
    edition: str = Field(min_length=2, max_length=100)
    articles: list[Article] = Field(min_length=1)

    @field_validator("articles")
    @classmethod
    def _unique(cls, articles: list[Article]) -> list[Article]:
        keys = [a.ref_key for a in articles]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate articles {dupes}")
        return articles


class LawLibrary(RuleModel):
    laws: list[Law] = Field(min_length=1)

    @field_validator("laws")
    @classmethod
    def _unique(cls, laws: list[Law]) -> list[Law]:
        ids = [law.id for law in laws]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate law ids {dupes}")
        return laws

    def law(self, law_id: str) -> Law:
        for law in self.laws:
            if law.id == law_id:
                return law
        raise KeyError(law_id)

    def article(self, ref: LegalRef) -> Article:
        for article in self.law(ref.law).articles:
            if article.ref_key == ref.article:
                return article
        raise KeyError(str(ref))

    def cite(self, ref: LegalRef | str, *, full: bool = False) -> str:
        """The citation as printed in documents, e.g. ``《食品安全法》第三十三条第一款第（六）项``; ``full`` uses the
        law's full title (``《中华人民共和国食品安全法》…``) as a legal document does."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        law = self.law(ref.law)
        text = (f"《{law.title}》" if full else law.short) + self.article(ref).title
        if ref.item is not None:
            text += f"第（{chinese_number(ref.item)}）项"
        return text


_REF = re.compile(r"^(?P<law>[a-z0-9_]{1,40}):(?P<article>[a-z0-9_]{1,40})(?:#(?P<item>[1-9][0-9]?))?$")


@dataclass(frozen=True, slots=True)
class LegalRef:
    law: str
    article: str
    item: int | None = None

    def __str__(self) -> str:
        return f"{self.law}:{self.article}" + (f"#{self.item}" if self.item is not None else "")


def parse_ref(text: str) -> LegalRef:
    match = _REF.match(text)
    if not match:
        raise ValueError(f"bad legal reference {text!r}; expected '<law>:<article>[#item]'")
    item = match.group("item")
    return LegalRef(match.group("law"), match.group("article"), int(item) if item else None)


# ---------------------------------------------------------------------------------------------------------
# violation grades and checklist
# ---------------------------------------------------------------------------------------------------------
class GradeDisposal(StrEnum):
    NONE = "none"
    ON_SITE_CORRECTION = "on_site_correction"
    RECTIFICATION_ORDER = "rectification_order"
    OPEN_CASE = "open_case"


DOCUMENT_IDS = frozenset({"inspection_record", "rectification_order", "case_approval"})


class ViolationGrade(RuleModel):
    id: str = Field(pattern=r"^[a-z_]{1,30}$")
    label: str
    description: str
    disposal: GradeDisposal
    documents: list[str]
    rectify_days: int = Field(ge=0, le=365)
    follow_up: bool

    @field_validator("documents")
    @classmethod
    def _known_documents(cls, docs: list[str]) -> list[str]:
        unknown = sorted(set(docs) - DOCUMENT_IDS)
        if unknown:
            raise ValueError(f"unknown document template(s) {unknown}; known: {sorted(DOCUMENT_IDS)}")
        return docs


class ViolationGrades(RuleModel):
    grades: list[ViolationGrade] = Field(min_length=1)

    def grade(self, grade_id: str) -> ViolationGrade:
        for grade in self.grades:
            if grade.id == grade_id:
                return grade
        raise KeyError(grade_id)


class Domain(StrEnum):
    FOOD = "food"
    DRUG = "drug"
    SPECIAL_EQUIPMENT = "special_equipment"


class ChecklistItem(RuleModel):
    code: str = Field(pattern=r"^(FS|DR|SE)-[A-Z]{2,5}-[0-9]{2}$")
    domain: Domain
    title: str = Field(min_length=2, max_length=80)
    requirement: str = Field(min_length=2, max_length=500)
    violation: str = Field(min_length=4, max_length=300, description="违法事实表述（责令改正通知书）")
    remedy: str = Field(min_length=4, max_length=300, description="整改要求（责令改正通知书）")
    tags: list[str] = Field(min_length=1)
    key_item: bool
    basis: list[str] = Field(min_length=1)
    penalty: list[str] = Field(default_factory=list)
    grade: str
    alert_categories: list[str] = Field(default_factory=list)

    @field_validator("basis", "penalty")
    @classmethod
    def _refs(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            parse_ref(ref)
        return refs

    @model_validator(mode="after")
    def _prefix_matches_domain(self) -> ChecklistItem:
        prefix = {"FS": Domain.FOOD, "DR": Domain.DRUG, "SE": Domain.SPECIAL_EQUIPMENT}[self.code[:2]]
        if prefix is not self.domain:
            raise ValueError(f"code {self.code} does not belong to domain {self.domain}")
        return self


class Checklist(RuleModel):
    items: list[ChecklistItem] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Finding:
    """An inspector's result for one item: ``passed`` or not, with an optional grade other than the default."""

    item_code: str
    passed: bool
    grade: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class FindingDisposal:
    item: ChecklistItem
    finding: Finding
    grade: ViolationGrade
    basis: tuple[str, ...]  # citations
    penalty: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    laws: LawLibrary
    checklist: Checklist
    grades: ViolationGrades

    def item(self, code: str) -> ChecklistItem:
        for item in self.checklist.items:
            if item.code == code:
                return item
        raise KeyError(code)

    def items(
        self, *, domain: Domain | str | None = None, tags: Iterable[str] = (), key_only: bool = False
    ) -> list[ChecklistItem]:
        """Items of ``domain`` carrying every tag in ``tags`` (key items only if ``key_only``)."""
        wanted = set(tags)
        return [
            item
            for item in self.checklist.items
            if (domain is None or item.domain == domain)
            and wanted <= set(item.tags)
            and (item.key_item or not key_only)
        ]

    def items_for_alert(self, category: str) -> list[ChecklistItem]:
        """Items an alert of ``category`` points at (to pre-fill an inspection task from a clue)."""
        return [item for item in self.checklist.items if category in item.alert_categories]

    def assess(self, findings: Iterable[Finding]) -> list[FindingDisposal]:
        """Match each finding to its grade's disposal (passed items get the ``compliant`` grade if defined)."""
        out: list[FindingDisposal] = []
        for finding in findings:
            item = self.item(finding.item_code)
            if finding.passed:
                grade_id = "compliant"
            else:
                grade_id = finding.grade or item.grade
            try:
                grade = self.grades.grade(grade_id)
            except KeyError:
                raise ValueError(f"unknown violation grade {grade_id!r} for {item.code}") from None
            out.append(
                FindingDisposal(
                    item,
                    finding,
                    grade,
                    tuple(self.laws.cite(r) for r in item.basis),
                    tuple(self.laws.cite(r) for r in item.penalty),
                )
            )
        return out

    def documents_for(self, disposals: Iterable[FindingDisposal]) -> list[str]:
        """The document templates a set of findings calls for, in a stable order."""
        wanted = {doc for d in disposals for doc in d.grade.documents}
        return [doc for doc in ("inspection_record", "rectification_order", "case_approval") if doc in wanted]


def _check_refs(catalogue: Catalogue, checklist_path: Path, grades_path: Path) -> None:
    grade_ids = {g.id for g in catalogue.grades.grades}
    for i, item in enumerate(catalogue.checklist.items):
        for field in ("basis", "penalty"):
            for j, ref in enumerate(getattr(item, field)):
                try:
                    catalogue.laws.article(parse_ref(ref))
                except KeyError:
                    raise RuleFileError(
                        checklist_path, f"items[{i}].{field}[{j}]", f"{ref!r} is not in the law library"
                    ) from None
        if item.grade not in grade_ids:
            raise RuleFileError(
                checklist_path, f"items[{i}].grade", f"unknown grade {item.grade!r} (see {grades_path.name})"
            )
    codes = [item.code for item in catalogue.checklist.items]
    for i, code in enumerate(codes):
        if code in codes[:i]:
            raise RuleFileError(checklist_path, f"items[{i}].code", f"duplicate item code {code}")


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Load ``laws.toml``, ``checklist.toml`` and ``violation_grades.toml`` from ``directory`` and cross-check."""
    laws_path = rules_path("laws.toml", directory)
    checklist_path = rules_path("checklist.toml", directory)
    grades_path = rules_path("violation_grades.toml", directory)
    catalogue = Catalogue(
        laws=load_model(LawLibrary, laws_path),
        checklist=load_model(Checklist, checklist_path),
        grades=load_model(ViolationGrades, grades_path),
    )
    _check_refs(catalogue, checklist_path, grades_path)
    return catalogue


@cache
def packaged_catalogue() -> Catalogue:
    return load_catalogue()
