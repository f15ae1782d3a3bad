"""Find and register the embedded CJK fonts of generated PDFs — on any machine, with nothing but PyPI packages.

Why this font (recorded in ``docs/architecture.md``):

* reportlab embeds TrueType (``glyf``) outlines only; CFF-flavoured OpenType (Noto/Source Han CJK, the only CJK
  faces other PyPI packages ship) is refused with "postscript outlines are not supported".
* GB/T 9704 (党政机关公文格式) sets titles in 小标宋, first-level headings in 黑体 and body text in 仿宋_GB2312. Those
  faces are commercial (方正, 中易) and no package on PyPI ships them or a free 宋/仿宋 TrueType face.
* So the default face for every role is **WenQuanYi Micro Hei (文泉驿微米黑)**, a 黑体-style TrueType collection
  covering GBK (21,000+ hanzi), licensed Apache-2.0 (or GPLv3 with the font-embedding exception): redistribution
  and embedding in documents are allowed. It comes from the PyPI package ``paperang-p2-fonts-cjk`` (pinned), so a
  fresh machine has it after ``pip install``. It is preferred over a Debian font when both exist, so the same data
  renders to the same bytes on every machine.
* A bureau that holds licences for the GB/T 9704 faces sets them per role, as TrueType files:
  ``SENTINEL_CJK_FONT_TITLE`` (小标宋), ``SENTINEL_CJK_FONT_HEADING`` (黑体), ``SENTINEL_CJK_FONT_BODY`` (仿宋);
  ``SENTINEL_CJK_FONT`` sets all three. ``path#index`` picks a face of a collection.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

__all__ = [
    "CANDIDATES",
    "ROLES",
    "CjkFont",
    "DocumentFonts",
    "FontUnavailable",
    "bundled_font",
    "find_cjk_font",
    "register_cjk_font",
    "register_document_fonts",
]

ENV_VAR = "SENTINEL_CJK_FONT"
Role = Literal["title", "heading", "body"]
ROLES: tuple[Role, ...] = ("title", "heading", "body")
ROLE_ENV: dict[Role, str] = {role: f"{ENV_VAR}_{role.upper()}" for role in ROLES}

BUNDLED_PACKAGE = "paperang_p2_fonts_cjk"
BUNDLED_FILE = "fonts/wqy-microhei.ttc"

#: Debian's TrueType CJK fonts, tried only when the bundled PyPI font is missing (a broken install).
CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
)

INSTALL_HINT = (
    f"未找到可嵌入的中文 TrueType 字体：请重新安装依赖（pip install 'market-sentinel[cloud]'，含 {BUNDLED_PACKAGE}）"
    f"或设置 {ENV_VAR}=/path/font.ttf / no embeddable CJK TrueType font: reinstall the cloud dependencies "
    f"(they include {BUNDLED_PACKAGE}) or set {ENV_VAR}=/path/to/font.ttf[#index] "
    "(CFF-based OpenType such as Noto CJK cannot be embedded by reportlab)"
)


class FontUnavailable(RuntimeError):
    """No usable CJK font; the message says how to get one."""


@dataclass(frozen=True, slots=True)
class CjkFont:
    name: str  # the reportlab font name to use in styles
    path: Path
    index: int


@dataclass(frozen=True, slots=True)
class DocumentFonts:
    """The face for each GB/T 9704 role (title 小标宋, heading 黑体, body 仿宋 where the bureau supplies them)."""

    title: CjkFont
    heading: CjkFont
    body: CjkFont


def _parse(spec: str) -> tuple[str, int]:
    path, _, index = spec.partition("#")
    return path, int(index) if index else 0


def bundled_font() -> tuple[str, int] | None:
    """The (file, index) of the font shipped by the PyPI dependency, or None when the package is missing."""
    try:
        file = resources.files(BUNDLED_PACKAGE).joinpath(BUNDLED_FILE)
    except ModuleNotFoundError:
        return None
    path = Path(str(file))
    return (str(path), 0) if path.is_file() else None


def find_cjk_font(path: str | None = None, *, role: Role | None = None) -> tuple[str, int]:
    """The (file, index) to use: ``path``, then the role's variable, ``$SENTINEL_CJK_FONT``, the bundled font,
    then Debian's fonts."""
    explicit = path or (os.environ.get(ROLE_ENV[role]) if role else None) or os.environ.get(ENV_VAR)
    if explicit:
        file, index = _parse(explicit)
        if not Path(file).is_file():
            source = "argument" if path else (ROLE_ENV[role] if role and os.environ.get(ROLE_ENV[role]) else ENV_VAR)
            raise FontUnavailable(f"{file}: no such font file ({source})")
        return file, index
    bundled = bundled_font()
    if bundled:
        return bundled
    for file, index in CANDIDATES:
        if Path(file).is_file():
            return file, index
    raise FontUnavailable(INSTALL_HINT)


_REGISTERED: dict[tuple[str, int], CjkFont] = {}


def register_cjk_font(path: str | None = None, *, role: Role | None = None) -> CjkFont:
    """Register the CJK font with reportlab once per file and return its name."""
    file, index = find_cjk_font(path, role=role)
    key = (file, index)
    if key in _REGISTERED:
        return _REGISTERED[key]
    name = f"SentinelCJK{len(_REGISTERED)}"
    try:
        pdfmetrics.registerFont(TTFont(name, file, subfontIndex=index))
    except TTFError as exc:
        raise FontUnavailable(f"{file}#{index}: {exc}. {INSTALL_HINT}") from exc
    # one face for every style: <b> in templates must not fall back to a Latin-only font
    for bold in (0, 1):
        for italic in (0, 1):
            addMapping(name, bold, italic, name)
    font = CjkFont(name, Path(file), index)
    _REGISTERED[key] = font
    return font


def register_document_fonts(path: str | None = None) -> DocumentFonts:
    """The faces for every role; ``path`` (when given) is used for all of them."""
    title, heading, body = (register_cjk_font(path, role=role) for role in ROLES)
    return DocumentFonts(title=title, heading=heading, body=body)
