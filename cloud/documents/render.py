"""Jinja2 templates → a small document markup → PDF (reportlab platypus, embedded CJK font, deterministic).

A template (``templates/<id>.xml.j2``, autoescaped) renders this markup::

    <document>
      <title>现场检查笔录</title>           centred heading
      <docno>…</docno>                     right-aligned document number
      <fields><f label="被检查人">…</f>…</fields>   two-column label/value table
      <p>text, <b>bold</b>, <u>underline</u>, <br/></p>
      <table widths="1,4,1,3" header="1"><tr><td>…</td>…</tr>…</table>
      <signatures><sig label="检查人员（签名）"/>…</signatures>
      <spacer h="8"/>
    </document>

Everything user-supplied is escaped by Jinja's autoescape, so it cannot inject markup. PDFs are produced with
reportlab's ``invariant`` mode (fixed dates and document id), so the same data gives the same bytes and hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from cloud.documents.fonts import DocumentFonts, register_document_fonts
from cloud.documents.models import DocumentData

__all__ = ["TEMPLATES_DIR", "DocumentError", "document_sha256", "render_markup", "render_pdf"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


class DocumentError(ValueError):
    """A template or its markup is broken (names the template and the problem)."""


def cn_date(value: dt.date | dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        value = value.astimezone(SHANGHAI).date()
    return f"{value.year}年{value.month}月{value.day}日"


def cn_datetime(value: dt.datetime) -> str:
    local = value.astimezone(SHANGHAI)
    return f"{cn_date(local)}{local.hour:02d}时{local.minute:02d}分"


@cache
def _environment(directory: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(enabled_extensions=("j2", "xml"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["cn_date"] = cn_date
    env.filters["cn_datetime"] = cn_datetime
    return env


def render_markup(data: DocumentData, *, templates: Path | None = None) -> str:
    """Render ``data`` with its template into the document markup (a string of XML)."""
    env = _environment(templates or TEMPLATES_DIR)
    try:
        template = env.get_template(f"{data.template}.xml.j2")
        return template.render(doc=data, title=data.title)
    except Exception as exc:  # jinja2 TemplateError, UndefinedError...
        raise DocumentError(f"{data.template}: {exc}") from exc


class _Styles:
    """Sizes after GB/T 9704 and the enforcement-document formats: title 二号 (22 pt) in the title face, issuing
    agency 三号 (16 pt) in the heading face, body 四号 (14 pt) and table text 小四 (12 pt) in the body face."""

    def __init__(self, fonts: DocumentFonts) -> None:
        cjk = {"wordWrap": "CJK"}
        self.title = ParagraphStyle(
            "title", fontName=fonts.title.name, fontSize=22, leading=30, alignment=TA_CENTER, spaceAfter=4, **cjk
        )
        self.agency = ParagraphStyle(
            "agency", fontName=fonts.heading.name, fontSize=16, leading=22, alignment=TA_CENTER, **cjk
        )
        self.docno = ParagraphStyle(
            "docno", fontName=fonts.body.name, fontSize=12, leading=18, alignment=TA_RIGHT, spaceAfter=6, **cjk
        )
        self.body = ParagraphStyle(
            "body", fontName=fonts.body.name, fontSize=14, leading=24, firstLineIndent=28, spaceAfter=4, **cjk
        )
        self.cell = ParagraphStyle("cell", fontName=fonts.body.name, fontSize=12, leading=17, **cjk)
        self.label = ParagraphStyle(
            "label", fontName=fonts.heading.name, fontSize=12, leading=17, textColor=colors.HexColor("#333333"), **cjk
        )


def _inner(el: ET.Element) -> str:
    """The element's content as reportlab paragraph markup (text plus inline tags)."""
    parts = [ET.tostring(child, encoding="unicode") for child in el]
    text = (el.text or "").strip() if not parts else (el.text or "")
    return (text + "".join(parts)).strip()


_GRID = [
    ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ("LEFTPADDING", (0, 0), (-1, -1), 4),
    ("RIGHTPADDING", (0, 0), (-1, -1), 4),
]


def _flowables(root: ET.Element, styles: _Styles, width: float) -> list[Flowable]:
    out: list[Flowable] = []
    for el in root:
        tag = el.tag
        if tag == "title":
            out.append(Paragraph(_inner(el), styles.title))
        elif tag == "agency":
            out.append(Paragraph(_inner(el), styles.agency))
        elif tag == "docno":
            out.append(Paragraph(_inner(el), styles.docno))
        elif tag == "p":
            out.append(Paragraph(_inner(el), styles.body))
        elif tag == "spacer":
            out.append(Spacer(1, float(el.get("h", "6")) * mm))
        elif tag == "fields":
            rows = [[Paragraph(f.get("label", ""), styles.label), Paragraph(_inner(f), styles.cell)] for f in el]
            table = Table(rows, colWidths=[width * 0.22, width * 0.78])
            table.setStyle(TableStyle([*_GRID, ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f2f2f2"))]))
            out.append(table)
            out.append(Spacer(1, 3 * mm))
        elif tag == "table":
            weights = [float(w) for w in el.get("widths", "").split(",") if w] or None
            rows = [[Paragraph(_inner(td), styles.cell) for td in tr] for tr in el]
            if not rows:
                continue
            ncols = max(len(r) for r in rows)
            weights = weights or [1.0] * ncols
            total = sum(weights)
            table = Table(rows, colWidths=[width * w / total for w in weights], repeatRows=1)
            style = list(_GRID)
            if el.get("header") == "1":
                style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6e6e6")))
            table.setStyle(TableStyle(style))
            out.append(table)
            out.append(Spacer(1, 3 * mm))
        elif tag == "signatures":
            labels = [sig.get("label", "") for sig in el]
            rows = [
                [Paragraph(label, styles.cell), Paragraph("", styles.cell), Paragraph("年　月　日", styles.cell)]
                for label in labels
            ]
            table = Table(rows, colWidths=[width * 0.35, width * 0.4, width * 0.25], rowHeights=12 * mm)
            table.setStyle(TableStyle([("LINEBELOW", (1, 0), (1, -1), 0.5, colors.black)]))
            out.append(Spacer(1, 4 * mm))
            out.append(table)
        else:
            raise DocumentError(f"unknown element <{tag}> in document markup")
    return out


def render_pdf(data: DocumentData, *, font_path: str | None = None, templates: Path | None = None) -> bytes:
    """The PDF bytes of ``data`` (same data → same bytes), with the CJK font embedded."""
    markup = render_markup(data, templates=templates)
    try:
        root = ET.fromstring(markup)
    except ET.ParseError as exc:
        raise DocumentError(f"{data.template}: rendered markup is not well-formed: {exc}") from exc
    fonts: DocumentFonts = register_document_fonts(font_path)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=28 * mm,  # GB/T 9704: left 28 mm, top 37 mm; we keep the top shorter for forms
        rightMargin=26 * mm,
        topMargin=25 * mm,
        bottomMargin=25 * mm,
        title=f"{data.title} {data.doc_no}",
        author=data.agency,
        subject=data.title,
        creator="Market Sentinel",
        producer="Market Sentinel (reportlab)",
        invariant=1,
    )
    styles = _Styles(fonts)
    story = _flowables(root, styles, doc.width)

    def footer(canvas: object, document: SimpleDocTemplate) -> None:
        canvas.saveState()  # type: ignore[attr-defined]
        canvas.setFont(fonts.body.name, 9)  # type: ignore[attr-defined]
        canvas.drawCentredString(  # type: ignore[attr-defined]
            A4[0] / 2, 12 * mm, f"{data.doc_no}　第 {document.page} 页"
        )
        canvas.restoreState()  # type: ignore[attr-defined]

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def document_sha256(pdf: bytes) -> str:
    return hashlib.sha256(pdf).hexdigest()
