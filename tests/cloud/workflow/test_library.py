"""The law library, inspection catalogue and violation grades in cloud/rules/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cloud.rules.library import (
    Domain,
    Finding,
    GradeDisposal,
    chinese_number,
    load_catalogue,
    parse_ref,
)
from cloud.rules.loader import RULES_DIR, RuleFileError


def test_chinese_numbers() -> None:
    cases = {
        1: "一",
        10: "十",
        13: "十三",
        20: "二十",
        33: "三十三",
        105: "一百零五",
        110: "一百一十",
        126: "一百二十六",
    }
    for n, text in cases.items():
        assert chinese_number(n) == text
    assert chinese_number(1001) == "一千零一"


def test_packaged_catalogue_loads_and_covers_three_domains() -> None:
    cat = load_catalogue()
    for domain in Domain:
        assert len(cat.items(domain=domain)) >= 5
    titles = {law.title for law in cat.laws.laws}
    assert {"中华人民共和国食品安全法", "中华人民共和国药品管理法", "药品经营质量管理规范"} <= titles
    assert {"中华人民共和国特种设备安全法", "中华人民共和国消费者权益保护法"} <= titles
    assert all(a.wording in {"recalled", "paraphrase", "verified"} for law in cat.laws.laws for a in law.articles)


def test_citations() -> None:
    cat = load_catalogue()
    assert cat.laws.cite("food_safety_law:33#6") == "《食品安全法》第三十三条第（六）项"
    assert cat.laws.cite("special_equipment_law:40") == "《特种设备安全法》第四十条"
    assert cat.laws.cite("drug_gsp:appendix_alarm").startswith("《药品经营质量管理规范》附录")
    with pytest.raises(ValueError):
        parse_ref("food safety law 33")


def test_tags_and_alert_categories_select_items() -> None:
    cat = load_catalogue()
    cold = cat.items(tags=["冷链"])
    assert {i.code for i in cold} >= {"FS-STO-01", "DR-STO-01"}
    assert [i.code for i in cat.items_for_alert("drug_storage")] == ["DR-STO-01"]
    assert all(i.key_item for i in cat.items(domain="drug", key_only=True))


def test_findings_are_matched_to_disposals() -> None:
    cat = load_catalogue()
    results = cat.assess(
        [
            Finding("DR-LIC-01", passed=True),
            Finding("DR-STO-01", passed=False, note="冷藏柜 11.2 ℃"),
            Finding("FS-HYG-01", passed=False),
        ]
    )
    assert [r.grade.disposal for r in results] == [
        GradeDisposal.NONE,
        GradeDisposal.RECTIFICATION_ORDER,
        GradeDisposal.ON_SITE_CORRECTION,
    ]
    assert results[1].basis[0] == "《药品经营质量管理规范》第八十三条"
    assert results[1].penalty == ("《药品管理法》第一百二十六条",)
    assert cat.documents_for(results) == ["inspection_record", "rectification_order"]
    serious = cat.assess([Finding("DR-STO-01", passed=False, grade="serious")])
    assert serious[0].grade.disposal is GradeDisposal.OPEN_CASE
    assert "case_approval" in cat.documents_for(serious)


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    for name in ("laws.toml", "checklist.toml", "violation_grades.toml"):
        shutil.copy(RULES_DIR / name, tmp_path / name)
    return tmp_path


def test_dangling_legal_reference_names_file_and_key(rules_copy: Path) -> None:
    path = rules_copy / "checklist.toml"
    path.write_text(path.read_text().replace('"food_safety_law:45"', '"food_safety_law:999"'))
    with pytest.raises(RuleFileError) as info:
        load_catalogue(rules_copy)
    assert info.value.file == str(path)
    assert info.value.key == "items[1].basis[0]"
    assert "food_safety_law:999" in info.value.reason


def test_unknown_key_in_law_library_is_refused(rules_copy: Path) -> None:
    path = rules_copy / "laws.toml"
    path.write_text(path.read_text().replace('short = "《食品安全法》"', 'short = "《食品安全法》"\nauthor = "x"', 1))
    with pytest.raises(RuleFileError) as info:
        load_catalogue(rules_copy)
    assert info.value.key == "laws[0].author"


def test_unknown_document_in_grades_is_refused(rules_copy: Path) -> None:
    path = rules_copy / "violation_grades.toml"
    path.write_text(path.read_text().replace('documents = ["inspection_record"]', 'documents = ["fax"]', 1))
    with pytest.raises(RuleFileError) as info:
        load_catalogue(rules_copy)
    assert info.value.key.startswith("grades[0].documents")
