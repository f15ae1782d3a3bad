"""The one raw-code checker for every page a person reads (issue #19, "Chinese labels everywhere").

A page's visible text fails when it shows

* a dotted event code (``task.assessed``) or a ``site/sensor.metric`` key (``pharmacy-01/fridge1.temperature``),
* any lowercase ASCII word: an English enum value (``accepted``, ``clue_collection``, ``complaint``), a login name
  (``lisi``), a site or device id (``pharmacy-01``), an analysis fact (``kind=complaint``).

Only what is meant to be shown is allowed (:data:`ALLOWED`): units and the like. Upper-case document numbers,
USCCs and checklist item numbers are meant to be read and are not matched.

Used by the console walk (tests/cloud/web/test_console_pages.py), the phone, map, kiosk, big-screen and board walks
and the whole-flow browser test: one list, one detector.
"""

from __future__ import annotations

import re
from typing import Any

#: lowercase words that are meant to be read (units)
ALLOWED = frozenset({"km", "kg", "mm", "rh", "hpa"})
DOTTED = re.compile(r"\b[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\b")
SENSOR_KEY = re.compile(r"\b[a-z][a-z0-9_-]*/[a-z][a-z0-9_.-]*\b")
WORD = re.compile(r"(?<![A-Za-z0-9])[a-z][a-z0-9_-]*[a-z0-9_](?![A-Za-z0-9])")

#: what a person saw in the issue's screenshots: the detector must find every one of these
KNOWN_LIST = (
    "任务状态变更：accepted / checked_in / submitted　task.assessed　agent:edge-pharmacy　clue_collection　"
    "kind=complaint（规则 complaint）；repeats_90d_at_most=0　lisi　pharmacy-01/fridge1.temperature"
)


def raw_codes(text: str, allowed: frozenset[str] = ALLOWED) -> list[str]:
    """The raw codes in ``text`` (sorted, each once); empty when the text is fit for a person."""
    found = [*DOTTED.findall(text), *SENSOR_KEY.findall(text)]
    found += [w for w in WORD.findall(text) if w not in allowed]
    return sorted(set(found))


def visible_text(page: Any) -> str:
    """What a person reads on a Playwright page: the body's rendered text plus the values and placeholders of the
    text inputs (a selected option is part of innerText)."""
    text: str = page.evaluate("() => document.body.innerText")
    text += "\n" + page.evaluate(
        "() => [...document.querySelectorAll('input:not([type=checkbox]):not([type=radio]):not([type=file])"
        ":not([type=hidden]),textarea')].map(e => (e.value || '') + ' ' + (e.placeholder || '')).join('\\n')"
    )
    return text


def page_raw_codes(page: Any, allowed: frozenset[str] = ALLOWED) -> list[str]:
    """The raw codes on the page as it is now rendered."""
    return raw_codes(visible_text(page), allowed)


def assert_no_raw_codes(page: Any, where: str, allowed: frozenset[str] = ALLOWED) -> None:
    """Fail naming the page and the codes it shows."""
    codes = page_raw_codes(page, allowed)
    assert not codes, f"raw codes on {where}: {codes}"
