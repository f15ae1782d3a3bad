"""Per-camera analysis: one frame in → alert lifecycle transitions out (pure, no threads, no I/O).

Order of work on each analysed frame, cheapest first (Frigate's lesson):
1. downscale to a small greyscale frame (~120 px high) and a mid one (≤ 240 px) — everything below
   works on these except HOG and models;
2. frozen-picture check, motion (brightness-normalised, lighting frames rejected), tamper;
3. only when the lens is fine: people (HOG on motion regions only, and only when a people rule can
   fire at this hour), night pest heuristic, site models (on motion or on their interval);
4. conditions → :class:`AlertLifecycle` → transitions; raise/update get a JPEG snapshot with boxes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.vision.behaviour import DwellWindow, vocabulary
from edge.vision.config import CameraConfig, LabelRule, ZoneConfig
from edge.vision.geometry import Box, Mask, polygon_mask
from edge.vision.lifecycle import AlertLifecycle, Observation, Transition
from edge.vision.models import Detector, ModelUnavailable, OnnxDetector
from edge.vision.motion import MotionDetector, MotionResult
from edge.vision.people import Detection, PeopleDetector, PersonTracker, median_count
from edge.vision.pests import PestHeuristic
from edge.vision.recording import ClipRecorder
from edge.vision.snapshot import Snapshot, render_snapshot
from edge.vision.tamper import TamperDetector, TamperState
from protocols.messages import AlertPhase, EvidenceRef, Severity

log = logging.getLogger(__name__)
Frame = NDArray[Any]
EvidenceSink = Callable[[Snapshot, str], EvidenceRef]
"""Stores a snapshot (and queues its upload); returns the reference the alert carries."""
ClipSink = Callable[[bytes, str, str], EvidenceRef]
"""Stores a clip (data, content type, label) and queues its upload; returns its reference."""

HEALTH_RULES = frozenset({"video_offline", "video_frozen"})
TAMPER_RULES = frozenset({"camera_covered", "camera_defocused", "camera_moved"})
LARGE_MOTION_HOLD_S = 2.0
MID_HEIGHT = 240


@dataclass(slots=True)
class FrameReport:
    """What one frame showed (for tests, benchmarks and debugging)."""

    transitions: list[Transition] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    motion: MotionResult | None = None
    tamper: TamperState | None = None
    people: list[Detection] = field(default_factory=list)
    hog_runs: int = 0


class _Geometry:
    def __init__(self, config: CameraConfig, width: int, height: int) -> None:
        self.width, self.height = width, height
        sh = min(config.motion.frame_height, height)
        self.small = (max(8, round(width * sh / height)), sh)
        mh = min(MID_HEIGHT, height)
        self.mid = (max(8, round(width * mh / height)), mh)
        sw, shh = self.small
        valid = (
            cv2.bitwise_not(polygon_mask(config.masks, sw, shh)) if config.masks else np.full((shh, sw), 255, np.uint8)
        )
        self.valid: Mask = valid
        self.zones: dict[str, Mask] = {
            z.zone_id: cv2.bitwise_and(polygon_mask([z.polygon], sw, shh), valid) for z in config.effective_zones
        }
        self.fx, self.fy = width / sw, height / shh

    def zone_at(self, x: float, y: float, zones: list[ZoneConfig]) -> ZoneConfig | None:
        sx = min(self.small[0] - 1, max(0, int(x / self.fx)))
        sy = min(self.small[1] - 1, max(0, int(y / self.fy)))
        for z in zones:
            if self.zones[z.zone_id][sy, sx]:
                return z
        return None


class CameraPipeline:
    def __init__(
        self,
        config: CameraConfig,
        *,
        evidence: EvidenceSink | None = None,
        people_detector: PeopleDetector | None = None,
        detectors: list[Detector] | None = None,
        clip_sink: ClipSink | None = None,
    ) -> None:
        self.config = config
        self._clip_sink = clip_sink
        cc = config.clips
        self._clips = (
            ClipRecorder(
                pre_s=cc.pre_s, post_s=cc.post_s, fps=config.analysis_fps, max_width=cc.max_width, codec=cc.codec
            )
            if clip_sink is not None and cc.enabled
            else None
        )
        self.lifecycle = AlertLifecycle(device_id=config.camera_id)
        self._evidence = evidence
        self._zones = config.effective_zones
        self._geo: _Geometry | None = None
        self._motion: MotionDetector | None = None
        self._pests: PestHeuristic | None = None
        self._tamper = TamperDetector(config.tamper)
        self._detectors: list[Detector] = detectors if detectors is not None else self._load_models()
        self._people_model = next((d for d in self._detectors if d.model_id == config.people.model), None)
        self._people = people_detector or (
            PeopleDetector(config.people.hit_threshold, config.people.max_regions)
            if config.people.enabled and config.people.model is None
            else None
        )
        self._detections: dict[str, tuple[float, list[Detection]]] = {}
        self._model_last_run: dict[str, float] = {}
        self._model_cfg = {m.model_id: m for m in config.models}
        self._dwell: dict[tuple[str, int, str | None], DwellWindow] = {}
        self._model_held: dict[tuple[str, int, str | None], Observation] = {}
        pc = config.people
        self._tracker = PersonTracker(hold_s=pc.track_hold_s, min_hits=pc.min_hits)
        self._people_last_run = -1e18
        self._zone_counts: dict[str, deque[int]] = {}
        self._prev_small: Frame | None = None
        self._unchanged_since: float | None = None
        self._large_motion_at = -1e18
        self.last_frame: Frame | None = None
        self.last_frame_wall: datetime | None = None

    @property
    def name(self) -> str:
        return self.config.name or self.config.camera_id

    def _load_models(self) -> list[Detector]:
        out: list[Detector] = []
        for m in self.config.models:
            try:
                out.append(OnnxDetector(m))
            except ModelUnavailable as exc:
                log.error("camera %s: model %s disabled: %s", self.config.camera_id, m.model_id, exc)
        return out

    # ------------------------------------------------------------------------------------------------
    def process(self, frame: Frame, now: float, wall: datetime) -> FrameReport:
        """Analyse one frame taken at monotonic ``now`` / wall-clock ``wall`` (aware)."""
        cfg = self.config
        h, w = frame.shape[:2]
        if self._geo is None or (self._geo.width, self._geo.height) != (w, h):
            self._geo = _Geometry(cfg, w, h)
            self._motion = MotionDetector(cfg.motion, self._geo.valid, self._geo.zones)
            pest_zones = {z.zone_id: self._geo.zones[z.zone_id] for z in self._zones if z.watches_pests}
            self._pests = PestHeuristic(cfg.pests, pest_zones)
        geo, motion_detector, pests = self._geo, self._motion, self._pests
        assert motion_detector is not None and pests is not None
        self.last_frame, self.last_frame_wall = frame, wall

        colour = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        mid = cv2.cvtColor(cv2.resize(colour, geo.mid, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        small = cv2.resize(mid, geo.small, interpolation=cv2.INTER_AREA)
        report = FrameReport()
        obs = report.observations

        # 1. frozen picture
        blank = float(small.std()) < cfg.tamper.covered_std  # a blank picture cannot look frozen
        if (
            not blank
            and self._prev_small is not None
            and float(cv2.absdiff(small, self._prev_small).mean()) < cfg.health.frozen_diff
        ):
            self._unchanged_since = self._unchanged_since if self._unchanged_since is not None else now
        else:
            self._unchanged_since = None
        self._prev_small = small
        if self._unchanged_since is not None and now - self._unchanged_since >= cfg.health.frozen_after_s:
            frozen_for = now - self._unchanged_since
            obs.append(
                Observation(
                    "video_frozen",
                    Severity.MINOR,
                    "video",
                    f"摄像头「{self.name}」画面冻结（{frozen_for:.0f} 秒无任何变化），请检查摄像头或编码器",
                    clear_message=f"摄像头「{self.name}」画面已恢复变化",
                )
            )

        # 2. motion and tamper
        motion = motion_detector.detect(small, now)
        report.motion = motion
        scope: set[str] | None = None
        tamper = self._tamper.check(small, mid, now, motion_active=motion.active) if cfg.tamper.enabled else None
        report.tamper = tamper
        if tamper is not None:
            obs.extend(self._tamper_observations(tamper))
            if tamper.covered or tamper.moved:
                motion_detector.reset()
                scope = set(HEALTH_RULES | TAMPER_RULES)

        # 3. content analysis (only when the picture can be trusted)
        if scope is None:
            working = cfg.schedule.is_working(wall)
            dark = float(small.mean()) < cfg.pests.dark_mean
            if (self._people is not None or self._people_model is not None) and self._people_rules_armed(working):
                report.people, report.hog_runs = self._find_people(frame, motion, now)
            obs.extend(self._people_observations(report.people, now, working))
            large = cfg.pests.max_blob_area * 4 * geo.small[0] * geo.small[1]
            if any(b.area > large for b in motion.boxes) or report.people:
                self._large_motion_at = now  # a person-sized mover is around: its fragments are no rodent
            calm = now - self._large_motion_at > LARGE_MOTION_HOLD_S
            if cfg.pests.enabled:
                sightings = pests.update(motion.foreground, now, dark=dark, after_hours=not working)
                for s in sightings if calm else []:
                    obs.append(self._pest_observation(s.zone_id, s.confidence, s.box.scaled(geo.fx, geo.fy), dark))
            obs.extend(self._model_observations(frame, motion, now, working))
        obs = _strongest_per_rule(obs)
        report.observations = obs

        transitions = self.lifecycle.step(now, wall, obs, scope)
        report.transitions = [self._with_evidence(t, obs, frame) for t in transitions]
        if self._clips is not None:
            report.transitions = self._with_clips(report.transitions, frame, now, wall)
        return report

    def _with_clips(self, transitions: list[Transition], frame: Frame, now: float, wall: datetime) -> list[Transition]:
        """Start a clip on each raise; a finished clip rides an UPDATE (or the CLEAR that cut it short)."""
        assert self._clips is not None and self._clip_sink is not None
        self._clips.push(now, frame)
        for t in transitions:
            if t.phase is AlertPhase.RAISE and self.config.clips.wants(t.rule_id):
                self._clips.start(t.alert_id, t.rule_id, now)
        ending = {t.alert_id: i for i, t in enumerate(transitions) if t.phase is AlertPhase.CLEAR}
        out = list(transitions)
        for clip in self._clips.due(now, set(ending)):
            try:
                ref = self._clip_sink(clip.data, clip.content_type, f"{clip.rule_id} clip")
            except OSError as exc:
                log.error("camera %s: cannot store clip of %s: %s", self.config.camera_id, clip.rule_id, exc)
                continue
            if clip.alert_id in ending:
                i = ending[clip.alert_id]
                out[i] = _replace_evidence(out[i], (*out[i].evidence, ref))
            else:
                update = self.lifecycle.update_of(clip.rule_id, wall)
                if update is not None and update.alert_id == clip.alert_id:
                    out.append(_replace_evidence(update, (ref,)))
        return out

    def close(self) -> None:
        """Drop clips still being written (the worker stops)."""
        if self._clips is not None:
            self._clips.close()

    def no_frame(self, now: float, wall: datetime, silent_for: float, reason: str | None = None) -> list[Transition]:
        """Called while the stream delivers nothing; raises ``video_offline`` once ``offline_after_s`` passed."""
        obs: list[Observation] = []
        if silent_for >= self.config.health.offline_after_s:
            why = f"；原因：{reason}" if reason else ""
            obs.append(
                Observation(
                    "video_offline",
                    Severity.MAJOR,
                    "video",
                    f"摄像头「{self.name}」视频离线（{silent_for:.0f} 秒无有效画面），正在自动重连{why}",
                    clear_message=f"摄像头「{self.name}」视频已恢复",
                )
            )
        transitions = self.lifecycle.step(now, wall, obs, scope={"video_offline"})
        return [self._with_evidence(t, obs, self.last_frame) for t in transitions]

    def frame_arrived(self, now: float, wall: datetime) -> list[Transition]:
        """Frames flow again: clear ``video_offline`` at once."""
        if "video_offline" not in self.lifecycle.open_rules():
            return []
        return self.lifecycle.step(now, wall, [], scope={"video_offline"})

    # ------------------------------------------------------------------------------------------------
    def _tamper_observations(self, t: TamperState) -> list[Observation]:
        cfg = self.config.tamper
        out: list[Observation] = []
        if t.covered:
            out.append(
                Observation(
                    "camera_covered",
                    Severity.MAJOR,
                    "video",
                    f"摄像头「{self.name}」疑似被遮挡或黑屏（亮度 {t.mean:.0f}，纹理 {t.std:.1f}）",
                    clear_message=f"摄像头「{self.name}」遮挡已解除",
                    value=round(t.std, 2),
                    raise_after_s=cfg.raise_after_s,
                    clear_after_s=cfg.clear_after_s,
                )
            )
        if t.defocused and t.sharpness_baseline:
            pct = 100 * t.sharpness / t.sharpness_baseline
            out.append(
                Observation(
                    "camera_defocused",
                    Severity.MINOR,
                    "video",
                    f"摄像头「{self.name}」画面模糊（清晰度降至基线的 {pct:.0f}%），疑似失焦或镜头污损",
                    clear_message=f"摄像头「{self.name}」清晰度已恢复",
                    value=round(pct, 1),
                    unit="%",
                    raise_after_s=cfg.raise_after_s,
                    clear_after_s=cfg.clear_after_s,
                )
            )
        if t.moved:
            pct = 100 * t.moved_fraction
            out.append(
                Observation(
                    "camera_moved",
                    Severity.MAJOR,
                    "video",
                    f"摄像头「{self.name}」疑似被移动或转向（{pct:.0f}% 画面与参考视角不符）",
                    clear_message=f"摄像头「{self.name}」视角已恢复",
                    value=round(pct, 1),
                    unit="%",
                    raise_after_s=cfg.raise_after_s,
                    clear_after_s=cfg.clear_after_s,
                )
            )
        return out

    def _people_rules_armed(self, working: bool) -> bool:
        return any((z.after_hours_presence and not working) or z.occupancy_limit is not None for z in self._zones)

    def _find_people(self, frame: Frame, motion: MotionResult, now: float) -> tuple[list[Detection], int]:
        """Tracked people; the detector runs at most every ``detect_interval_s``, on motion and on live tracks."""
        assert self._geo is not None
        cfg = self.config.people
        live = self._tracker.live(now) if self._tracker.tracks else []
        runs = 0
        if now - self._people_last_run >= cfg.detect_interval_s:
            regions = [b.scaled(self._geo.fx, self._geo.fy) for b in motion.boxes] if motion.active else []
            # follow someone who stands still (and candidates not yet confirmed)
            regions += [t.box for t in self._tracker.tracks]
            if regions or self._people_model is not None:  # a model also finds people who stand still
                self._people_last_run = now
                if self._people_model is not None:  # a real detector: the whole frame, its people classes
                    found = [
                        Detection("person", d.score, d.box)
                        for d in self._detect(self._people_model, frame, now)
                        if d.label in cfg.person_labels and d.score >= cfg.min_score
                    ]
                else:
                    assert self._people is not None
                    found = self._people.detect(frame, regions)
                self._tracker.update(found, now)
                self._count_round(now)
                live = self._tracker.live(now)
                runs = 1
        return [Detection("person", t.score, t.box) for t in live], runs

    def _count_round(self, now: float) -> None:
        assert self._geo is not None
        counts = dict.fromkeys((z.zone_id for z in self._zones), 0)
        for t in self._tracker.seen_at(now):
            zone = self._geo.zone_at(*t.box.foot, self._zones)
            if zone is not None:
                counts[zone.zone_id] += 1
        for zone_id, n in counts.items():
            window = self._zone_counts.setdefault(zone_id, deque(maxlen=self.config.people.count_rounds))
            window.append(n)

    def _people_observations(self, people: list[Detection], now: float, working: bool) -> list[Observation]:
        assert self._geo is not None
        per_zone: dict[str, list[Box]] = {}
        for d in people:
            zone = self._geo.zone_at(*d.box.foot, self._zones)
            if zone is not None:
                per_zone.setdefault(zone.zone_id, []).append(d.box)
        cfg = self.config.people
        out: list[Observation] = []
        for z in self._zones:
            boxes = per_zone.get(z.zone_id)
            if not boxes:
                continue
            count = max(1, median_count(self._zone_counts.get(z.zone_id, deque())))
            labels = tuple("person" for _ in boxes)
            if z.after_hours_presence and not working:
                out.append(
                    Observation(
                        f"after_hours_presence.{z.zone_id}",
                        Severity.MAJOR,
                        "video",
                        f"非营业时间「{z.label}」发现人员（{count} 人），摄像头「{self.name}」",
                        raise_after_s=cfg.raise_after_s,
                        clear_after_s=cfg.clear_after_s,
                        clear_message=f"「{z.label}」非营业时间人员已离开",
                        value=float(count),
                        unit="人",
                        zone_id=z.zone_id,
                        boxes=tuple(boxes),
                        box_labels=labels,
                    )
                )
            if z.occupancy_limit is not None and count > z.occupancy_limit:
                out.append(
                    Observation(
                        f"occupancy_exceeded.{z.zone_id}",
                        Severity.WARNING,
                        "video",
                        f"「{z.label}」人数 {count} 超过上限 {z.occupancy_limit}，摄像头「{self.name}」",
                        raise_after_s=cfg.raise_after_s,
                        clear_after_s=cfg.clear_after_s,
                        clear_message=f"「{z.label}」人数已回落至上限以内",
                        value=float(count),
                        limit=float(z.occupancy_limit),
                        unit="人",
                        zone_id=z.zone_id,
                        boxes=tuple(boxes),
                        box_labels=labels,
                    )
                )
        return out

    def _pest_observation(self, zone_id: str, confidence: float, box: Box, dark: bool) -> Observation:
        zone = next(z for z in self._zones if z.zone_id == zone_id)
        when = "夜间暗光" if dark else "非营业时间"
        return Observation(
            f"suspected_pest_activity.{zone_id}",
            Severity.MAJOR,
            "food_safety",
            f"疑似鼠患：「{zone.label}」{when}发现小型快速移动目标（置信度 {confidence:.2f}，"
            f"非确定识别，请人工复核录像）",
            raise_after_s=self.config.pests.raise_after_s,
            clear_after_s=self.config.pests.clear_after_s,
            clear_message=f"「{zone.label}」疑似鼠患活动已停止",
            value=confidence,
            zone_id=zone_id,
            boxes=(box,),
            box_labels=(f"pest? {confidence:.2f}",),
        )

    def _model_observations(self, frame: Frame, motion: MotionResult, now: float, working: bool) -> list[Observation]:
        """Run the due models; per (rule, zone) a k-of-n dwell window decides whether the event holds.

        Between inferences (``interval_s``) the last verdict holds, so an event seen at 1 inference/s is
        a continuous condition for the lifecycle, not a blink every fifth frame.
        """
        wall = self.last_frame_wall
        for det in list(self._detectors):
            mc = self._model_cfg.get(det.model_id)
            if mc is None:
                continue
            if mc.run == "on_motion" and not motion.active:
                continue
            if now - self._model_last_run.get(det.model_id, -1e18) < mc.interval_s:
                continue
            self._model_last_run[det.model_id] = now
            detections = self._detect(det, frame, now)
            for index, rule in enumerate(mc.rules):
                self._judge_rule(mc.model_id, index, rule, detections)
        out: list[Observation] = []
        for (model_id, index, _zone), obs in self._model_held.items():
            rule = self._model_cfg[model_id].rules[index]
            schedule = rule.schedule or self.config.schedule
            at_work = working if rule.schedule is None or wall is None else schedule.is_working(wall)
            if (rule.when == "working_hours" and not at_work) or (rule.when == "after_hours" and at_work):
                continue
            out.append(obs)
        return out

    def _detect(self, det: Detector, frame: Frame, now: float) -> list[Detection]:
        """One inference per model and frame (people and behaviour rules share it); a broken model is dropped."""
        cached = self._detections.get(det.model_id)
        if cached is not None and cached[0] == now:
            return cached[1]
        try:
            found = det.detect(frame)
        except ModelUnavailable as exc:
            log.error("camera %s: model %s disabled: %s", self.config.camera_id, det.model_id, exc)
            if det in self._detectors:
                self._detectors.remove(det)
            if det is self._people_model:
                self._people_model = None
            found = []
        self._detections[det.model_id] = (now, found)
        return found

    def _judge_rule(self, model_id: str, index: int, rule: LabelRule, detections: list[Detection]) -> None:
        classes = rule.classes
        per_zone: dict[str | None, list[Detection]] = {}
        for d in detections:
            if d.label not in classes or d.score < rule.min_score:
                continue
            zone = self._geo.zone_at(*d.box.centre, self._zones) if self._geo else None
            if rule.zones and (zone is None or zone.zone_id not in rule.zones):
                continue
            per_zone.setdefault(zone.zone_id if zone else None, []).append(d)
        keys = {k[2] for k in self._dwell if k[:2] == (model_id, index)} | set(per_zone)
        severity, category, template, cooldown = rule.resolved()
        event_name = vocabulary().events[rule.event].name if rule.event else (rule.label or "")
        for zone_id in keys:
            key = (model_id, index, zone_id)
            window = self._dwell.setdefault(key, DwellWindow(rule.dwell_k, rule.dwell_n))
            hits = per_zone.get(zone_id, [])
            if not window.push(bool(hits)):
                self._model_held.pop(key, None)
                continue
            if not hits:
                continue  # still holding (k of n): keep the last boxes
            best = max(hits, key=lambda d: d.score)
            zone = next((z for z in self._zones if z.zone_id == zone_id), None)
            self._model_held[key] = Observation(
                rule.alert_rule_id(zone_id),
                severity,
                category,
                template.format(
                    zone=zone.label if zone else "全画面",
                    score=f"{best.score:.2f}",
                    camera=self.name,
                    event=event_name,
                ),
                raise_after_s=rule.raise_after_s,
                clear_after_s=rule.clear_after_s,
                value=round(best.score, 3),
                zone_id=zone_id,
                boxes=tuple(d.box for d in hits),
                box_labels=tuple(f"{d.label} {d.score:.2f}" for d in hits),
                cooldown_s=cooldown,
            )

    def _with_evidence(self, t: Transition, obs: list[Observation], frame: Frame | None) -> Transition:
        if t.phase is AlertPhase.CLEAR or self._evidence is None or frame is None:
            return t
        o = next((x for x in obs if x.rule_id == t.rule_id), None)
        boxes = o.boxes if o else ()
        labels = o.box_labels if o else ()
        snap = render_snapshot(
            frame,
            boxes,
            labels,
            caption=f"{self.config.camera_id} {t.rule_id}",
            ts=t.ts,
            quality=self.config.snapshot.jpeg_quality,
            max_width=self.config.snapshot.max_width,
            timezone=self.config.schedule.timezone,
        )
        try:
            ref = self._evidence(snap, t.rule_id)
        except OSError as exc:
            log.error("camera %s: cannot store evidence: %s", self.config.camera_id, exc)
            return t
        return _replace_evidence(t, (ref,))


def _replace_evidence(t: Transition, evidence: tuple[EvidenceRef, ...]) -> Transition:
    from dataclasses import replace

    return replace(t, evidence=evidence)


def _strongest_per_rule(obs: list[Observation]) -> list[Observation]:
    best: dict[str, Observation] = {}
    for o in obs:
        cur = best.get(o.rule_id)
        if cur is None or (o.value or 0) > (cur.value or 0):
            best[o.rule_id] = o
    return list(best.values())
