"""Rule-pack and register-map pushes, the health trial and the logs command on the edge (issue 15).

In-process with a stand-in for the agent's operations (apply / health / logs): the real end to end (real
mosquitto, ingest and agent, a config that fails health and rolls back) is tests/cloud/test_fleet_commands.py.
Proves: a pushed file is validated alone and then with the whole site by the validators ``sentinel edge validate``
uses; an invalid one is refused and nothing stays on disk; a valid one is written next to the site (never over a
shipped file) and applied; one that is unhealthy after the apply is undone (file restored, old site applied) and
reported as rolled back with the version in force; logs are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.commands import recover_interrupted_trial, trial_file, version_of
from edge.config.loader import SHIPPED, load_site
from protocols.messages import COMMAND_OUTPUT_MAX, Command, CommandName
from tests.edge.test_command_signing import Rig, signed

GSP = (SHIPPED / "rulepacks" / "gsp.toml").read_text(encoding="utf-8")
MAP = (SHIPPED / "registers" / "power_monitor.toml").read_text(encoding="utf-8")


def command(command_id: str, kind: CommandName, **payload: Any) -> Command:
    return signed(Command(command_id=command_id, name=kind, issued_at=datetime.now(UTC), payload=payload))


async def test_rule_pack_push_is_validated_written_beside_the_site_and_applied(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    handler = rig.handler()
    site_dir = rig.site.path.parent
    target = site_dir / "rulepacks" / "gsp.toml"

    bad = await handler(command("p1", CommandName.PUSH_RULE_PACK, name="gsp", text="id = 'gsp'\nrules = 3\n"))
    assert not bad.ok and "配置无效" in bad.detail and not target.exists() and rig.applied == []

    # valid alone, but the site's override of temp_rate no longer finds its rule: refused, nothing left behind
    without_rate = GSP.replace('id = "temp_rate"', 'id = "temp_rise"')
    breaks = await handler(command("p2", CommandName.PUSH_RULE_PACK, name="gsp", text=without_rate))
    assert not breaks.ok and "overrides.temp_rate" in breaks.detail, breaks.detail
    assert not target.exists() and rig.applied == []

    tighter = GSP.replace("max_per_min = 2.0", "max_per_min = 1.5")
    good = await handler(command("p3", CommandName.PUSH_RULE_PACK, name="gsp", text=tighter))
    assert good.ok, good.detail
    assert good.version == version_of(tighter) and not good.rolled_back
    assert target.read_text(encoding="utf-8") == tighter, "written beside the site, the shipped pack untouched"
    assert (SHIPPED / "rulepacks" / "gsp.toml").read_text(encoding="utf-8") == GSP
    rule = next(r for r in rig.applied[-1].rule_packs["gsp"].rules if r.id == "temp_rate")
    assert rule.max_per_min == 1.5  # type: ignore[union-attr]
    assert rig.applied[-1].rule_pack_versions["gsp"] == version_of(tighter), "the heartbeat reports it in force"

    mapped = await handler(command("p4", CommandName.PUSH_REGISTER_MAP, name="meter-v2", text=MAP))
    assert mapped.ok and (site_dir / "registers" / "meter-v2.toml").read_text(encoding="utf-8") == MAP
    broken_map = await handler(command("p5", CommandName.PUSH_REGISTER_MAP, name="meter-v3", text="[[points]]\n"))
    assert not broken_map.ok and not (site_dir / "registers" / "meter-v3.toml").exists()
    sneaky = await handler(command("p6", CommandName.PUSH_REGISTER_MAP, name="../evil", text=MAP))
    assert not sneaky.ok and not (site_dir.parent / "evil.toml").exists()


async def test_an_unhealthy_push_is_rolled_back_by_the_agent(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    handler = rig.handler()
    original = rig.site
    original_text = original.path.read_text(encoding="utf-8")
    rig.unhealthy = "设备 fridge9 未能成功采集（connection refused）"

    pushed = original_text.replace('label = "常温库"', 'label = "常温库二"')
    result = await handler(command("c1", CommandName.PUSH_CONFIG, config=pushed))
    assert not result.ok and result.rolled_back, result.detail
    assert "未达到健康" in result.detail and "fridge9" in result.detail and "已自动回滚" in result.detail
    assert result.version == version_of(original_text)
    assert original.path.read_text(encoding="utf-8") == original_text, "the previous file is back"
    assert [s.text for s in rig.applied] == [pushed, original_text], "applied, then the previous one again"

    pack = await handler(command("c2", CommandName.PUSH_RULE_PACK, name="gsp", text=GSP))
    assert pack.rolled_back and not (original.path.parent / "rulepacks" / "gsp.toml").exists()

    again = await rig.handler()(command("c1", CommandName.PUSH_CONFIG, config=pushed))  # resend after restart
    assert (again.ok, again.rolled_back, again.version) == (False, True, result.version)
    assert len(rig.applied) == 4, "a resend is answered from memory, not tried again"


async def test_logs_returns_the_last_lines_bounded(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    result = await rig.handler()(command("l1", CommandName.LOGS, lines=3))
    assert result.ok and result.output == "line 1998\nline 1999\nline 2000"
    rig.log_lines = ["x" * 1500] * 1000
    big = await rig.handler()(command("l2", CommandName.LOGS, lines=1000))
    assert big.output is not None and len(big.output) <= COMMAND_OUTPUT_MAX and big.output.startswith("x")
    snap = await rig.handler()(command("s1", CommandName.SNAPSHOT, camera="cam-9"))
    assert not snap.ok and "没有摄像头 cam-9" in snap.detail
    t = "2026-12-01T09:00:00+08:00"
    ok = await rig.handler()(
        command("e1", CommandName.EXPORT_RANGE, camera="cam1", start=t, end="2026-12-01T09:10:00+08:00")
    )
    assert ok.ok and "cam1" in ok.detail
    naive = await rig.handler()(command("e2", CommandName.EXPORT_RANGE, camera="cam1", start=t[:19], end=t))
    assert not naive.ok and "时区" in naive.detail


async def test_a_trial_interrupted_by_a_stop_or_crash_is_rolled_back_at_the_next_start(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    original_text = rig.site.path.read_text(encoding="utf-8")
    pushed = original_text.replace('label = "常温库"', 'label = "常温库二"')
    in_trial, verdict = asyncio.Event(), asyncio.Event()

    async def never_healthy(deadline_s: float, tolerated: frozenset[str] = frozenset()) -> str | None:
        in_trial.set()
        await verdict.wait()  # the agent dies before the verdict
        return None

    rig.await_healthy = never_healthy  # type: ignore[method-assign]
    trial = asyncio.create_task(rig.handler()(command("t1", CommandName.PUSH_CONFIG, config=pushed)))
    await in_trial.wait()
    assert trial_file(rig.site.path).exists()
    assert rig.site.path.read_text(encoding="utf-8") == pushed, "the new file is in place during the trial"
    trial.cancel()  # as SIGTERM / kill: no verdict, no result
    with contextlib.suppress(asyncio.CancelledError):
        await trial

    assert recover_interrupted_trial(rig.site.path)  # what `sentinel edge run` does before loading the site
    assert rig.site.path.read_text(encoding="utf-8") == original_text
    rig.site = load_site(rig.site.path)
    resent = await rig.handler()(command("t1", CommandName.PUSH_CONFIG, config=pushed))
    assert (resent.ok, resent.rolled_back, resent.version) == (False, True, version_of(original_text))
    assert "试运行期间停止" in resent.detail and not trial_file(rig.site.path).exists()
    assert rig.site.path.read_text(encoding="utf-8") == original_text, "answered, not tried again"
    assert not recover_interrupted_trial(rig.site.path)
