"""#14: a due date on a calendar year without official holiday data is shown 预计，以官方公布为准 in the console.

The API gives every due date its certainty (``/console/deadlines`` rows, the task's ``due_certainty``, case
clocks); the pages print due dates only through ``fmtDue`` (api.js), whose text is checked here by running the
real module in node on the real API rows. Not a browser walk: the page markup itself is not rendered here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.utils.workflow_factories import World

API = "/api/v1"
JS = Path(__file__).parents[3] / "cloud" / "web" / "static" / "js"
MARK = "（预计，以官方公布为准）"


def _fmt_due(pairs: list[tuple[str, str | None]]) -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = (
        f"import({json.dumps((JS / 'api.js').as_uri())}).then((m) => "
        f"console.log(JSON.stringify({json.dumps(pairs)}.map(([d, c]) => m.fmtDue(d, c)))))"
    )
    out = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_provisional_due_dates_carry_their_mark_to_the_console(world: World) -> None:
    c = world.client
    late = c.post(f"{API}/clues/{world.alert()}/dispatch", json={"due_date": "2027-01-06"}, headers=world.h("clerk"))
    assert late.status_code == 200, late.text
    assert late.json()["task"]["due_certainty"] == "provisional"
    rows = c.get(f"{API}/console/deadlines", headers=world.h("head")).json()
    row = next(r for r in rows if r["kind"] == "task" and r["due"] == "2027-01-06")
    assert row["certainty"] == "provisional"
    shown = _fmt_due([(row["due"], row["certainty"]), ("2026-10-13", "official")])
    assert shown == [f"2027年1月6日{MARK}", "2026年10月13日"]


def test_pages_print_due_dates_only_through_fmt_due() -> None:
    for page in ("console.js", "mobile.js", "screen.js"):
        text = (JS / page).read_text(encoding="utf-8")
        bare = re.findall(r"fmtDate\([^)]*\bdue[^)]*\)", text)
        assert not bare, f"{page}: due dates printed without their certainty: {bare}"
