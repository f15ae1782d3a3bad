"""A small county for fault injection: real mosquitto, the cloud ingest as a process, two edge agent processes
polling a real Modbus TCP simulator, and an optional TCP proxy between the agents and the broker.

What the edges wrote (their outbox sequence: one seq per telemetry batch or alert event) is compared with what
the cloud committed (``ingest_seq``) and stored (``reading``): nothing missing, nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel_cli import servers
from sentinel_cli.servers import Server, free_port
from tests.edge.harness import REPO, AgentProcess, SentinelProcess

SCENARIO = REPO / "firmware-config" / "demo" / "pharmacy.scenario.toml"
SITES = ("pharmacy-01", "pharmacy-02")

SITE = """
[agent]
site_id = "{site_id}"
agent_id = "{agent_id}"
data_dir = '{data_dir}'
batch_max_readings = {batch}
batch_interval_s = 0.3
heartbeat_interval_s = 1
fsync = "normal"
outbox_max_entries = {max_entries}

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
reconnect_min_s = 0.2
reconnect_max_s = 1
ack_timeout_s = 2

[[buses]]
kind = "tcp"
id = "gateway"
host = "127.0.0.1"
port = {modbus_port}
timeout_s = 0.5

[[devices]]
type = "modbus_probe"
id = "fridge1"
bus = "gateway"
address = 1
label = "药品冷藏柜1"
poll_interval_s = 0.1

[[devices]]
type = "modbus_probe"
id = "store1"
bus = "gateway"
address = 2
label = "常温库"
poll_interval_s = 0.1

[[rules]]
pack = "gsp"
profile = "refrigerated"
devices = ["fridge1"]
overrides = {{ temp_rate = {{ max_per_min = 100000 }} }}
"""


class TcpProxy:
    """Loopback TCP proxy we can cut: ``cut()`` drops every connection and refuses new ones until ``restore()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()


class CloudProcess(SentinelProcess):
    """``sentinel cloud ingest`` on the county's database (SQLite in ``data_dir``) and broker."""

    def __init__(self, data_dir: Path, mqtt_port: int, log: Path) -> None:
        env = {
            "SENTINEL_DATA_DIR": str(data_dir),
            "SENTINEL_MQTT_PORT": str(mqtt_port),
            "SENTINEL_MQTT_CLIENT_ID": "fault-ingest-1",
            "SENTINEL_INGEST_MAX_WAIT_MS": "5",
        }
        super().__init__(["cloud", "ingest"], log, env)
        self.data_dir = data_dir

    @property
    def db(self) -> Path:
        return self.data_dir / "sentinel.db"


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        conn.close()


@dataclass
class Edge:
    site_id: str
    data_dir: Path
    agent: AgentProcess

    @property
    def db(self) -> Path:
        return self.data_dir / "edge.db"

    def meta(self, key: str) -> int:
        rows = _query(self.db, f"SELECT value FROM meta WHERE key = '{key}'")
        return int(rows[0][0]) if rows else 0

    def last_seq(self) -> int:
        return max(self.meta("next_seq") - 1, 0)

    def queued(self) -> set[int]:
        """Seqs still in the outbox (e.g. the batch flushed at shutdown: sent at the next start)."""
        return {int(r[0]) for r in _query(self.db, "SELECT seq FROM outbox")}

    def depth(self) -> int:
        rows = _query(self.db, "SELECT COUNT(*) FROM outbox")
        return int(rows[0][0]) if rows else 0


@dataclass
class Outcome:
    written: int  # outbox entries the edges wrote (seqs)
    committed: int  # distinct (agent, seq) the cloud committed
    thinned: int  # entries the edges dropped by their disk quota (reported, counted)
    readings: int
    duplicate_readings: int
    alerts_committed: int
    queued: int = 0  # entries still in an outbox after the agents stopped, not committed (sent at the next start)
    #: committed, but still in an outbox: the agent stopped before the Ack came back (e.g. a device-offline alert
    #: raised as the simulator went away); resent at the next start and acked as a duplicate, stored once
    unacked: int = 0
    dead_letters: int = 0  # dead-lettered in the cloud (a fault must not turn good input into dead letters)
    missing: list[tuple[str, int]] = field(default_factory=list)

    def row(self, elapsed_s: float) -> dict[str, Any]:
        """The figures of a run, as reported (docs/reliability.md)."""
        return {
            "load_readings_per_s": round(self.readings / elapsed_s, 1),
            "batches_written": self.written,
            "batches_committed": self.committed,
            "thinned_by_quota": self.thinned,
            "missing_in_cloud": len(self.missing),
            "queued_at_shutdown": self.queued,
            "unacked_at_shutdown": self.unacked,
            "accounted": self.accounted(),
            "dead_letters": self.dead_letters,
            "readings_stored": self.readings,
            "duplicate_readings": self.duplicate_readings,
            "alerts_committed": self.alerts_committed,
        }

    def accounted(self) -> bool:
        """Every seq an edge wrote is committed, queued for the next start, or (≤ thinned) missing; no more."""
        return self.committed + self.queued + len(self.missing) == self.written


@dataclass
class County:
    tmp: Path
    broker: Server
    cloud: CloudProcess
    edges: list[Edge]
    proxy: TcpProxy | None = None
    started: float = field(default_factory=time.monotonic)

    def committed(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {e.site_id: set() for e in self.edges}
        for site, seq in _query(self.cloud.db, "SELECT site_id, seq FROM ingest_seq"):
            out.setdefault(site, set()).add(int(seq))
        return out

    def readings(self) -> int:
        rows = _query(self.cloud.db, "SELECT COUNT(*) FROM reading")
        return int(rows[0][0]) if rows else 0

    def caught_up(self, marks: dict[str, int]) -> bool:
        """Every entry written up to the marks has left its outbox (acked after commit, or thinned by the quota)."""
        by_site = {e.site_id: e for e in self.edges}
        return all(not any(s <= mark for s in by_site[site].queued()) for site, mark in marks.items())

    def marks(self) -> dict[str, int]:
        return {e.site_id: e.last_seq() for e in self.edges}

    def outcome(self) -> Outcome:
        committed = self.committed()
        written = sum(e.last_seq() for e in self.edges)
        thinned = sum(e.meta("thinned_batches") for e in self.edges)
        queued = {e.site_id: e.queued() for e in self.edges}
        missing = [
            (e.site_id, s)
            for e in self.edges
            for s in range(1, e.last_seq() + 1)
            if s not in committed[e.site_id] and s not in queued[e.site_id]
        ]
        unacked = sum(len(queued[site] & committed[site]) for site in queued)
        dead = _query(self.cloud.db, "SELECT COUNT(*) FROM dead_letter")
        dup = _query(
            self.cloud.db,
            "SELECT COUNT(*) - (SELECT COUNT(*) FROM (SELECT DISTINCT site_id, sensor_id, ts_ms FROM reading)) "
            "FROM reading",
        )
        alerts = _query(self.cloud.db, "SELECT COUNT(*) FROM ingest_seq WHERE kind = 'alert'")
        return Outcome(
            written=written,
            committed=sum(len(v) for v in committed.values()),
            thinned=thinned,
            readings=self.readings(),
            duplicate_readings=int(dup[0][0]) if dup else 0,
            alerts_committed=int(alerts[0][0]) if alerts else 0,
            queued=sum(len(q) for q in queued.values()) - unacked,
            unacked=unacked,
            dead_letters=int(dead[0][0]) if dead else 0,
            missing=missing,
        )

    def logs(self) -> str:
        parts = [f"--- cloud\n{self.cloud.log.read_text(errors='replace')[-2000:]}"]
        parts += [f"--- {e.site_id}\n{e.agent.tail(2000)}" for e in self.edges]
        return "\n".join(parts)


def register_configs(db: Path, configs: list[Path]) -> None:
    """The installer's part: the cloud registry knows each site with its devices and sensors before the boxes
    report (the cloud quarantines data of unregistered sites and devices, #13)."""
    from sqlalchemy import create_engine

    from cloud.core.db import init_db
    from tests.utils.registration import register_site_config

    db.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{db}")
    try:
        init_db(engine)
        for config in configs:
            register_site_config(engine, config)
    finally:
        engine.dispose()


def make_county(
    tmp: Path, *, via_proxy: bool = False, batch: int = 10, max_entries: int = 2_000_000, register: bool = True
) -> County:
    """``register=False``: the caller registers the sites itself (the soak, with their department and contacts)."""
    broker = servers.start_mosquitto(tmp / "broker", persistence=True)
    cloud = CloudProcess(tmp / "cloud", broker.port, tmp / "cloud.log")
    proxy = TcpProxy(broker.port) if via_proxy else None
    modbus_port = free_port()
    edges = []
    for site in SITES:
        data_dir = tmp / site
        config = tmp / f"{site}.toml"
        config.write_text(
            SITE.format(
                site_id=site,
                # agent ids must be unique county-wide: the cloud dedups by (agent_id, seq) (see docs/reliability.md)
                agent_id=f"edge-{site}",
                data_dir=data_dir,
                mqtt_port=proxy.port if proxy else broker.port,
                modbus_port=modbus_port,
                batch=batch,
                max_entries=max_entries,
            ),
            encoding="utf-8",
        )
        edges.append(Edge(site, data_dir, AgentProcess(config, tmp / f"{site}.log")))
    if register:
        register_configs(cloud.db, [tmp / f"{site}.toml" for site in SITES])
    county = County(tmp, broker, cloud, edges, proxy)
    county.modbus_port = modbus_port  # type: ignore[attr-defined]
    return county


def report(row: dict[str, Any]) -> None:
    """Append a result row to $SENTINEL_FAULT_REPORT (JSON lines) when set; docs/reliability.md is made from it."""
    print(json.dumps(row, ensure_ascii=False))
    path = os.environ.get("SENTINEL_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
