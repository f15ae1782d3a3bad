"""Camera configuration: one ``CameraConfig`` per item of the site config's ``cameras`` list.

Polygons are in normalised image coordinates (0..1, origin top-left) so that a config survives a
change of stream resolution. Every section has defaults, bounds and a description; unknown keys
are rejected (``extra="forbid"``) so a typo in a site file fails at load with the key named.
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from protocols.messages import Identifier, Severity

Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]
Polygon = Annotated[list[Point], Field(min_length=3, max_length=64)]
FULL_FRAME: list[Point] = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkWindow(_Section):
    """Working time on some weekdays; ``end`` before ``start`` means the window runs past midnight."""

    days: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default=[1, 2, 3, 4, 5, 6, 7], description="ISO weekdays, Monday = 1"
    )
    start: time = Field(description="HH:MM local time")
    end: time = Field(description="HH:MM local time")


class Schedule(_Section):
    """Working hours of a site (or zone) in its local time zone."""

    timezone: str = Field(default="Asia/Shanghai")
    windows: list[WorkWindow] = Field(
        default_factory=lambda: [WorkWindow(start=time(6, 0), end=time(22, 0))],
        description="working-hour windows; outside all of them is 'after hours'",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    def is_working(self, ts: datetime) -> bool:
        local = ts.astimezone(ZoneInfo(self.timezone))
        day, clock = local.isoweekday(), local.time()
        for w in self.windows:
            if w.start <= w.end:
                if day in w.days and w.start <= clock < w.end:
                    return True
            else:  # overnight: the part after start belongs to `day`, the part before end to the next day
                if day in w.days and clock >= w.start:
                    return True
                previous = 7 if day == 1 else day - 1
                if previous in w.days and clock < w.end:
                    return True
        return False


ZoneKind = Literal["kitchen", "storage", "equipment", "entrance", "general"]


class ZoneConfig(_Section):
    zone_id: Identifier
    name: str = Field(default="", max_length=64, description="Chinese display name, e.g. 后厨操作区")
    kind: ZoneKind = "general"
    polygon: Polygon = Field(default_factory=lambda: list(FULL_FRAME))
    after_hours_presence: bool = Field(default=False, description="alert when a person is here after hours")
    occupancy_limit: int | None = Field(default=None, ge=1, le=100, description="alert above this many people")
    pest_watch: bool | None = Field(default=None, description="night pest heuristic; default: kitchen zones")

    @property
    def watches_pests(self) -> bool:
        return self.kind == "kitchen" if self.pest_watch is None else self.pest_watch

    @property
    def label(self) -> str:
        return self.name or self.zone_id


class MotionConfig(_Section):
    frame_height: int = Field(default=120, ge=60, le=240, description="height of the analysis frame (px)")
    sensitivity: float = Field(default=0.6, ge=0, le=1, description="0 = only strong changes, 1 = faint ones")
    min_area: float = Field(
        default=0.0004, ge=0, le=0.5, description="smallest motion region as a fraction of the frame"
    )
    min_duration_s: float = Field(default=0.3, ge=0, le=30, description="motion must last this long to count")
    background_alpha: float = Field(default=0.08, ge=0.001, le=1, description="background learning rate")
    lighting_reject_fraction: float = Field(
        default=0.35, ge=0.05, le=1, description="a frame where more than this fraction changes is lighting"
    )


class HealthConfig(_Section):
    offline_after_s: float = Field(default=10, ge=1, le=600, description="no frame this long → video offline")
    read_timeout_s: float = Field(default=2, ge=0.2, le=60)
    reopen_backoff_s: float = Field(default=1, ge=0.1, le=60, description="first reopen delay")
    reopen_backoff_max_s: float = Field(default=30, ge=0.1, le=600)
    frozen_after_s: float = Field(default=30, ge=2, le=3600, description="identical frames this long → frozen")
    frozen_diff: float = Field(
        default=0.02, ge=0, le=10, description="mean abs grey difference below this = the same picture"
    )


class TamperConfig(_Section):
    enabled: bool = True
    warmup_s: float = Field(default=2, ge=0, le=600, description="learn the scene before judging")
    raise_after_s: float = Field(default=2, ge=0, le=600)
    clear_after_s: float = Field(default=2, ge=0, le=600)
    covered_std: float = Field(default=7, ge=0, le=64, description="grey std-dev below this = covered/blank")
    blackout_mean: float = Field(default=18, ge=0, le=128, description="mean grey below this with low texture")
    defocus_ratio: float = Field(default=0.35, ge=0.01, le=0.95, description="sharpness below ratio × baseline")
    moved_cell_ncc: float = Field(default=0.35, ge=-1, le=1, description="a grid cell with NCC below differs")
    moved_fraction: float = Field(default=0.6, ge=0.1, le=1, description="this fraction of cells differ = moved")
    reference_refresh_s: float = Field(default=300, ge=5, le=86_400, description="refresh reference this often")
    relearn_after_s: float = Field(
        default=1800, ge=10, le=604_800, description="a new view kept this long becomes the reference"
    )


class PeopleConfig(_Section):
    enabled: bool = True
    hit_threshold: float = Field(default=0.3, ge=-1, le=5, description="HOG SVM score needed for a person")
    raise_after_s: float = Field(default=1, ge=0, le=600)
    clear_after_s: float = Field(default=4, ge=0, le=600, description="no person tracked this long → clear")
    max_regions: int = Field(default=4, ge=1, le=32, description="HOG runs on at most this many regions")
    detect_interval_s: float = Field(
        default=1.0, ge=0, le=30, description="at most one people detection per interval (motion runs every frame)"
    )
    track_hold_s: float = Field(
        default=6.0, ge=0, le=600, description="a tracked person missed by the detector is kept this long"
    )
    min_hits: int = Field(default=2, ge=1, le=20, description="detections before a track counts as a person")
    count_rounds: int = Field(default=3, ge=1, le=30, description="occupancy = median count of this many rounds")
    model: Identifier | None = Field(
        default=None, description="model_id of a [[models]] item that finds people (e.g. a YOLO export); default HOG"
    )
    person_labels: list[str] = Field(default_factory=lambda: ["person"], description="the model's people classes")
    min_score: float = Field(default=0.4, ge=0, le=1, description="model boxes below this are not people")


class PestConfig(_Section):
    enabled: bool = True
    dark_mean: float = Field(default=70, ge=0, le=255, description="scene mean grey below this = dark")
    max_blob_area: float = Field(default=0.006, ge=0, le=0.2, description="largest blob (fraction of frame)")
    min_blob_area_px: int = Field(default=3, ge=1, le=500, description="smallest blob on the analysis frame")
    min_speed: float = Field(default=0.25, ge=0, le=10, description="frame heights per second")
    min_track_points: int = Field(default=3, ge=2, le=50)
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    raise_after_s: float = Field(default=0, ge=0, le=600)
    clear_after_s: float = Field(default=5, ge=0, le=600)


class LabelRule(_Section):
    """What to do when a model reports some class: a behaviour event of the vocabulary or a free rule.

    With ``event`` (``no_hat``, ``smoking``, ``rodent``… see ``edge/vision/behaviours.toml``) the rule
    inherits the event's name, severity, category, message and cool-down, matches model classes named
    like the event unless ``labels`` says otherwise, and alerts per zone (rule id ``<event>.<zone>``).
    Without ``event``, ``label``/``labels``, ``rule_id`` and ``message`` are required.
    """

    event: Identifier | None = Field(default=None, description="behaviour event of the vocabulary")
    label: str | None = Field(default=None, max_length=64, description="one model class (shorthand)")
    labels: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, description="model classes that mean this event"
    )
    rule_id: Identifier | None = Field(default=None, description="default: <event>.<zone>")
    min_score: float = Field(default=0.5, ge=0, le=1, description="confidence a box needs to count")
    severity: Severity | None = None
    category: Identifier | None = None
    message: str | None = Field(
        default=None, max_length=200, description="Chinese text; {zone} {score} {camera} {event} are substituted"
    )
    when: Literal["always", "working_hours", "after_hours"] = "always"
    schedule: Schedule | None = Field(default=None, description="working hours for `when`; default: the camera's")
    zones: list[Identifier] = Field(default_factory=list, description="empty = anywhere in the frame")
    dwell_k: int = Field(default=1, ge=1, le=100, description="hits needed among the last dwell_n inferences")
    dwell_n: int = Field(default=1, ge=1, le=100)
    raise_after_s: float = Field(default=1, ge=0, le=600)
    clear_after_s: float = Field(default=5, ge=0, le=600, description="not seen this long → the incident ends")
    cooldown_s: float | None = Field(
        default=None, ge=0, le=86_400, description="no new alert this long after a clear; default: the event's"
    )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        from edge.vision.behaviour import vocabulary

        if self.dwell_k > self.dwell_n:
            raise ValueError(f"dwell_k ({self.dwell_k}) cannot exceed dwell_n ({self.dwell_n})")
        if self.event is not None:
            events = vocabulary().events
            if self.event not in events:
                raise ValueError(f"unknown behaviour event {self.event!r}; known: {', '.join(sorted(events))}")
        else:
            missing = [k for k in ("rule_id", "message") if getattr(self, k) is None]
            if not (self.label or self.labels):
                missing.append("label")
            if missing:
                raise ValueError(f"a rule without `event` needs {', '.join(missing)}")
        try:
            self.resolved()[2].format(zone="", score="", camera="", event="")
        except (KeyError, IndexError, ValueError) as exc:
            hint = "use {zone} {score} {camera} {event}"
            raise ValueError(f"message: unknown placeholder {exc}; {hint}") from None
        return self

    @property
    def classes(self) -> frozenset[str]:
        names = set(self.labels) | ({self.label} if self.label else set())
        return frozenset(names or {self.event or ""})

    def alert_rule_id(self, zone_id: str | None) -> str:
        if self.rule_id is not None:
            return self.rule_id
        return f"{self.event}.{zone_id or 'frame'}"

    def resolved(self) -> tuple[Severity, str, str, float]:
        """severity, category, message template, cool-down (the vocabulary's defaults filled in)."""
        from edge.vision.behaviour import vocabulary

        ev = vocabulary().events.get(self.event or "")
        severity = self.severity or (ev.severity if ev else Severity.MINOR)
        category = self.category or (ev.category if ev else "food_safety")
        message = self.message or (ev.message if ev else "")
        cooldown = self.cooldown_s if self.cooldown_s is not None else (ev.cooldown_s if ev else 0.0)
        return severity, category, message, cooldown


ModelFormat = Literal["yolov5", "yolov8", "yolo_nms", "ssd", "boxes", "scores"]


class ModelConfig(_Section):
    """A site's own ONNX model (``onnxruntime``, extra ``vision-onnx``); see docs/camera.md "Bring a model"."""

    model_id: Identifier
    path: Path
    labels: Path | None = Field(
        default=None,
        description="text file, one class per line, line index = class id; default: the names an ultralytics "
        "export embeds in the model's metadata",
    )
    output: ModelFormat = Field(
        default="boxes",
        description="yolov5 [1,N,5+C]; yolov8 (also v11) [1,4+C,N]; yolo_nms (export nms=True) [1,K,6] px; "
        "ssd (TF OD API boxes/classes/scores/num); boxes [N,6] 0..1; scores [1,C] classifier",
    )
    input_width: int | None = Field(default=None, ge=8, le=4096, description="default: the model's input shape")
    input_height: int | None = Field(default=None, ge=8, le=4096)
    letterbox: bool | None = Field(
        default=None, description="keep aspect ratio and pad (ultralytics); default: on for yolo formats"
    )
    stride: int = Field(default=32, ge=1, le=128, description="input sides must be multiples of this (yolo)")
    rgb: bool = True
    scale: float = Field(default=1 / 255, gt=0, description="pixel multiplier for float inputs")
    class_offset: int = Field(
        default=0, ge=-1, le=1, description="added to the model's class id before the labels lookup (ssd: -1)"
    )
    conf_threshold: float | None = Field(
        default=None, ge=0, le=1, description="boxes below are dropped before NMS; default: the lowest min_score"
    )
    nms_iou: float = Field(default=0.45, gt=0, le=1)
    max_detections: int = Field(default=300, ge=1, le=10_000)
    run: Literal["on_motion", "always"] = "on_motion"
    interval_s: float = Field(default=1, ge=0, le=3600, description="at most one inference per interval")
    rules: list[LabelRule] = Field(default_factory=list, description="empty: the model only finds people")

    @property
    def keeps_ratio(self) -> bool:
        return self.letterbox if self.letterbox is not None else self.output in ("yolov5", "yolov8", "yolo_nms")

    @property
    def min_confidence(self) -> float:
        if self.conf_threshold is not None:
            return self.conf_threshold
        return min((r.min_score for r in self.rules), default=0.25)

    @model_validator(mode="after")
    def _stride(self) -> Self:
        if self.output in ("yolov5", "yolov8", "yolo_nms"):
            for side in (self.input_width, self.input_height):
                if side is not None and side % self.stride:
                    raise ValueError(f"input size {side} is not a multiple of the model stride {self.stride}")
        return self


class ClipConfig(_Section):
    """A short video with each behaviour or security alert (riding the evidence upload queue)."""

    enabled: bool = True
    pre_s: float = Field(default=5, ge=0, le=60, description="seconds before the raise")
    post_s: float = Field(default=5, ge=0, le=120, description="seconds after the raise (cut short by a clear)")
    codec: Literal["vp8", "mjpeg"] = Field(default="vp8", description="vp8 = WebM (plays in the console); mjpeg = AVI")
    max_width: int = Field(default=480, ge=160, le=1920, description="frames kept for clips are scaled to this")
    skip_rules: list[str] = Field(
        default_factory=lambda: ["video_offline", "video_frozen"],
        description="rule ids (or prefixes before '.') without a clip: no picture to show",
    )

    def wants(self, rule_id: str) -> bool:
        return self.enabled and rule_id not in self.skip_rules and rule_id.split(".", 1)[0] not in self.skip_rules


class RecordingConfig(_Section):
    """Segment recording of this camera (site quota: ``[evidence]`` ``recordings_*``)."""

    mode: Literal["auto", "off", "continuous", "motion"] = Field(
        default="auto", description="auto: continuous for a camera with a kitchen zone, else off"
    )
    segment_s: float = Field(default=300, ge=10, le=3600)
    retention_days: float = Field(default=7, ge=0.01, le=3650, description="kitchen cameras: at least 7 (明厨亮灶)")
    codec: Literal["vp8", "mjpeg"] = Field(default="mjpeg", description="mjpeg is the cheapest to write")
    max_width: int = Field(default=640, ge=160, le=1920)
    motion_hold_s: float = Field(default=10, ge=0, le=600, description="motion mode: keep recording this long")


class SnapshotConfig(_Section):
    jpeg_quality: int = Field(default=80, ge=30, le=100)
    max_width: int = Field(default=1280, ge=160, le=4096)


class CameraConfig(_Section):
    """One camera of a site."""

    camera_id: Identifier
    name: str = Field(default="", max_length=64, description="Chinese display name, e.g. 后厨摄像头1")
    source: str = Field(
        min_length=1,
        description="http(s)://… MJPEG, rtsp://…, a video file path, or device:N for a local camera",
    )
    source_kind: Literal["auto", "mjpeg", "ffmpeg", "file", "device"] = "auto"
    analysis_fps: float = Field(default=5, ge=0.2, le=30, description="frames analysed per second")
    loop_file: bool = Field(default=False, description="restart a video file at its end")
    enabled: bool = True
    schedule: Schedule = Field(default_factory=Schedule)
    zones: list[ZoneConfig] = Field(default_factory=list)
    masks: list[Polygon] = Field(default_factory=list, description="areas to ignore (clocks, TVs, windows)")
    motion: MotionConfig = Field(default_factory=MotionConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    tamper: TamperConfig = Field(default_factory=TamperConfig)
    people: PeopleConfig = Field(default_factory=PeopleConfig)
    pests: PestConfig = Field(default_factory=PestConfig)
    models: list[ModelConfig] = Field(default_factory=list)
    snapshot: SnapshotConfig = Field(default_factory=SnapshotConfig)
    clips: ClipConfig = Field(default_factory=ClipConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)

    @model_validator(mode="after")
    def _unique_zones(self) -> Self:
        ids = [z.zone_id for z in self.zones]
        if len(ids) != len(set(ids)):
            raise ValueError(f"camera {self.camera_id}: zone ids must be unique, got {ids}")
        return self

    @model_validator(mode="after")
    def _people_model(self) -> Self:
        if self.people.model is not None and self.people.model not in {m.model_id for m in self.models}:
            raise ValueError(f"camera {self.camera_id}: people.model {self.people.model!r} is not a [[models]] item")
        return self

    @model_validator(mode="after")
    def _kitchen_retention(self) -> Self:
        from edge.vision.behaviour import vocabulary

        floor = vocabulary().recording.kitchen_min_retention_days
        if self.is_kitchen and self.recording.retention_days < floor:
            raise ValueError(
                f"camera {self.camera_id}: recording.retention_days {self.recording.retention_days:g} is below the "
                f"{floor:g} days kitchen video must be kept (明厨亮灶)"
            )
        return self

    @property
    def is_kitchen(self) -> bool:
        return any(z.kind == "kitchen" for z in self.zones)

    @property
    def recording_mode(self) -> Literal["off", "continuous", "motion"]:
        mode = self.recording.mode
        if mode == "auto":
            return "continuous" if self.is_kitchen else "off"
        return mode

    @property
    def effective_zones(self) -> list[ZoneConfig]:
        """The configured zones, or one zone covering the whole frame."""
        return list(self.zones) or [ZoneConfig(zone_id="frame", name="全画面")]

    @property
    def resolved_kind(self) -> Literal["mjpeg", "ffmpeg", "file", "device"]:
        if self.source_kind != "auto":
            return self.source_kind
        src = self.source.lower()
        if src.startswith("device:") or src.isdigit():
            return "device"
        if src.startswith(("http://", "https://")):
            return "mjpeg"
        if "://" in src:
            return "ffmpeg"
        return "file"


class EvidenceConfig(_Section):
    """Where the edge keeps snapshots and where it uploads them (site-level, not per camera)."""

    directory: Path = Path("data/evidence")
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    max_count: int = Field(default=20_000, ge=1)
    upload_url: str | None = Field(default=None, description="cloud base URL, e.g. https://cloud.example/")
    token_env: str = Field(default="SENTINEL_AGENT_TOKEN", description="env var holding the bearer token")
    recordings_dir: Path = Field(default=Path("recordings"), description="relative = under the agent's data_dir")
    recordings_max_bytes: int = Field(
        default=200 * 1024**3, ge=1024, description="quota of all recordings; the oldest go first"
    )
    recordings_min_free_bytes: int = Field(
        default=2 * 1024**3, ge=0, description="recording deletes the oldest (or pauses) to keep this free"
    )
