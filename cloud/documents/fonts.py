"""Find and register an embeddable CJK TrueType font for generated PDFs.

reportlab embeds TrueType (glyf) outlines only. Debian's ``fonts-noto-cjk`` ships CFF (PostScript) outlines that
reportlab refuses ("postscript outlines are not supported"), so the default is WenQuanYi (``fonts-wqy-microhei`` or
``fonts-wqy-zenhei``, TrueType collections). ``SENTINEL_CJK_FONT`` (or the ``path`` argument) selects another
TrueType/TTC file; ``path#index`` picks a face of a collection.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

__all__ = ["CANDIDATES", "CjkFont", "FontUnavailable", "find_cjk_font", "register_cjk_font"]

ENV_VAR = "SENTINEL_CJK_FONT"

#: (path, subfont index) tried in order.
CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
)

INSTALL_HINT = (
    "未找到可嵌入的中文 TrueType 字体，请安装 fonts-wqy-microhei（apt-get install fonts-wqy-microhei）或设置 "
    f"{ENV_VAR}=/path/font.ttf / no embeddable CJK TrueType font: install fonts-wqy-microhei "
    f"(apt-get install fonts-wqy-microhei) or set {ENV_VAR}=/path/to/font.ttf[#index] "
    "(Noto CJK is CFF-based and cannot be embedded by reportlab)"
)


class FontUnavailable(RuntimeError):
    """No usable CJK font; the message says how to install one."""


@dataclass(frozen=True, slots=True)
class CjkFont:
    name: str  # the reportlab font name to use in styles
    path: Path
    index: int


def _parse(spec: str) -> tuple[str, int]:
    path, _, index = spec.partition("#")
    return path, int(index) if index else 0


def find_cjk_font(path: str | None = None) -> tuple[str, int]:
    """The (file, index) of the first usable font: ``path``, then ``$SENTINEL_CJK_FONT``, then the candidates."""
    explicit = path or os.environ.get(ENV_VAR)
    if explicit:
        file, index = _parse(explicit)
        if not Path(file).is_file():
            raise FontUnavailable(f"{file}: no such font file ({ENV_VAR})")
        return file, index
    for file, index in CANDIDATES:
        if Path(file).is_file():
            return file, index
    raise FontUnavailable(INSTALL_HINT)


_REGISTERED: dict[tuple[str, int], CjkFont] = {}


def register_cjk_font(path: str | None = None) -> CjkFont:
    """Register the CJK font with reportlab once per file and return its name."""
    file, index = find_cjk_font(path)
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
