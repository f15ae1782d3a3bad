from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from pydantic import ValidationError

from cloud.documents import (
    CaseApproval,
    DocumentError,
    FontUnavailable,
    document_sha256,
    render_markup,
    render_pdf,
)
from cloud.documents.render import cn_datetime
from tests.cloud.documents.factories import OFFICERS, PARTY, inspection_record, rectification_order


def test_inspection_record_pdf_embeds_a_cjk_font() -> None:
    pdf = render_pdf(inspection_record())
    assert pdf.startswith(b"%PDF-")
    assert b"/FontFile2" in pdf  # an embedded TrueType font program, not a reference to a system font
    assert b"WenQuanYi" in pdf or b"SentinelCJK" in pdf
    assert b"STSong" not in pdf


def test_rendering_is_deterministic_within_and_across_processes() -> None:
    first = render_pdf(rectification_order())
    assert render_pdf(rectification_order()) == first
    code = (
        "from tests.cloud.documents.factories import rectification_order;"
        "from cloud.documents import render_pdf, document_sha256;"
        "print(document_sha256(render_pdf(rectification_order())))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == document_sha256(first)
    assert document_sha256(render_pdf(rectification_order(contact="赵六"))) != document_sha256(first)


def test_markup_contains_the_legal_content() -> None:
    markup = render_markup(rectification_order())
    assert "<title>责令改正通知书</title>" in markup
    assert "2026年3月17日" in markup
    assert "违反了《药品管理法》第五十三条、《药品经营质量管理规范》第八十三条的规定" in markup
    assert "六十日内向苏州市姑苏区人民政府申请行政复议" in markup
    record = render_markup(inspection_record())
    assert "2026年3月2日09时30分 至 2026年3月2日10时45分" in record
    assert "李四（32050001）、王五（32050002）" in record
    assert "被检查人不申请回避" in record


def test_user_text_cannot_inject_markup() -> None:
    record = inspection_record(findings='<signatures/> & "<b>" </p><p>伪造')
    markup = render_markup(record)
    assert "&lt;signatures/&gt; &amp;" in markup
    assert render_pdf(record).startswith(b"%PDF-")


def test_case_approval_table() -> None:
    approval = CaseApproval(
        doc_no="姑苏市监立〔2026〕3号",
        agency="苏州市姑苏区市场监督管理局",
        source="现场检查发现（任务 T-2026-0042）",
        party=PARTY,
        discovered_on=dt.date(2026, 3, 2),
        summary="当事人冷藏药品储存温度持续超标，经责令改正逾期未改正。",
        legal_basis=["《药品管理法》第五十三条"],
        handlers=OFFICERS,
        handler_opinion="建议立案调查",
    )
    assert "案件来源" in render_markup(approval)
    assert render_pdf(approval).startswith(b"%PDF-")


def test_invalid_data_is_refused_before_rendering() -> None:
    with pytest.raises(ValidationError):
        inspection_record(officers=OFFICERS[:1])  # two inspectors are required
    with pytest.raises(ValidationError):
        rectification_order(deadline=dt.date(2026, 3, 1))  # before the issue date
    with pytest.raises(ValidationError):
        inspection_record(nickname="x")  # unknown field


def test_missing_font_says_how_to_install(tmp_path: object) -> None:
    with pytest.raises(FontUnavailable, match="no such font file"):
        render_pdf(inspection_record(), font_path="/nonexistent/font.ttf")


def test_broken_template_is_a_document_error(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    templates = Path(str(tmp_path))
    (templates / "inspection_record.xml.j2").write_text("<document><p>{{ doc.no_such_field }}</p></document>")
    with pytest.raises(DocumentError, match="inspection_record"):
        render_markup(inspection_record(), templates=templates)
    (templates / "inspection_record.xml.j2").write_text("<document><marquee/></document>")
    with pytest.raises(DocumentError, match="marquee"):
        render_pdf(inspection_record(), templates=templates)


def test_times_are_printed_in_beijing_time() -> None:
    assert cn_datetime(dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)) == "2026年3月2日09时30分"
