// Evidence of an internet-monitoring clue (互联网监测) on the clue page: for each rule hit, the captured text with
// the matched words highlighted, the page address, the capture (the stored snapshot, the image), the rule and its
// legal basis; repeated hits of one rule on the same words are grouped with their count and capture times.
// Data: GET /api/v1/internet/hits?clue_id= (the evidence stored with each hit at screening time).
import { api, blobUrl, fmtTime, h, toast } from "./api.js";

const SHA = /^[0-9a-f]{64}$/;

function highlighted(ev) {
  const text = ev.text;
  const [start, end] = ev.span || [];
  if (typeof text !== "string" || !Number.isInteger(start) || !Number.isInteger(end) || end <= start) {
    return h("p", { class: "ad-text" }, ev.highlight || "—");
  }
  return h("p", { class: "ad-text" }, text.slice(0, start), h("mark", {}, text.slice(start, end)), text.slice(end));
}

// The capture is downloaded, not opened: a captured shop page is foreign HTML and must not run in our origin.
async function openEvidence(sha) {
  try {
    const a = h("a", { href: await blobUrl(`/api/v1/evidence/${sha}`), download: `互联网监测存证-${sha.slice(0, 12)}` });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (err) {
    toast(err.message, "error");
  }
}

function capture(ev) {
  const items = [];
  if (ev.url) items.push(h("li", {}, "页面：", h("a", { href: ev.url, target: "_blank", rel: "noopener noreferrer" }, ev.url)));
  if (ev.capture_sha256) {
    items.push(h("li", {}, "采集快照：", h("button", { type: "button", class: "link", onclick: () => openEvidence(ev.capture_sha256) }, "下载存证")));
  }
  if (ev.image_ref && SHA.test(ev.image_ref)) {
    const fig = h("figure", { class: "ad-image" }, h("figcaption", { class: "muted" }, "广告图片（存证）"));
    blobUrl(`/api/v1/evidence/${ev.image_ref}`).then((src) => fig.prepend(h("img", { src, alt: "广告图片" }))).catch(() => {
      fig.append(h("p", { class: "muted" }, "图片存证无法读取"));
    });
    items.push(h("li", {}, fig));
  } else if (ev.image_ref) {
    items.push(h("li", {}, "广告图片：", h("a", { href: ev.image_ref, target: "_blank", rel: "noopener noreferrer" }, ev.image_ref)));
  }
  return h("ul", { class: "ad-capture" }, items);
}

function group(hits) {
  const groups = new Map();
  for (const hit of hits) {
    const key = `${hit.rule_id}\u0000${hit.matched}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(hit);
  }
  return [...groups.values()].map((g) => g.sort((a, b) => String(b.evidence.captured_at).localeCompare(String(a.evidence.captured_at))));
}

function hitCard(hits) {
  const latest = hits[0];
  const ev = latest.evidence;
  return h("article", { class: "ad-hit", dataset: { rule: latest.rule_id, count: String(hits.length) } },
    h("h3", {}, `${ev.rule_name || "筛查规则"}：“${latest.matched}”`, hits.length > 1 ? h("span", { class: "badge" }, `重复命中 ${hits.length} 次`) : null),
    h("p", { class: "muted" }, `${ev.platform || ""}　${ev.shop || ""}　采集时间 ${fmtTime(ev.captured_at)}`),
    highlighted(ev),
    capture(ev),
    h("dl", { class: "kv" },
      h("dt", {}, "法律依据"), h("dd", { class: "ad-basis" }, (ev.citations || []).join("；") || "—"),
      ev.explanation ? [h("dt", {}, "说明"), h("dd", {}, ev.explanation)] : null),
    hits.length > 1
      ? h("details", {}, h("summary", {}, "各次命中"),
        h("ul", {}, hits.map((x) => h("li", {}, `${fmtTime(x.evidence.captured_at)}　${x.evidence.url || ""}`,
          x.evidence.capture_sha256 ? h("button", { type: "button", class: "link", onclick: () => openEvidence(x.evidence.capture_sha256) }, "下载存证") : null))))
      : null);
}

/** The evidence card of an internet-monitoring clue (empty when the clue has no screening hits). */
export function internetEvidence(clueId) {
  const body = h("div", { id: "internet-evidence" }, h("p", { class: "muted" }, "正在读取互联网监测证据……"));
  const card = h("section", { class: "card", "aria-labelledby": "h-internet" }, h("h2", { id: "h-internet" }, "互联网监测证据"), body);
  api(`internet/hits?clue_id=${clueId}&limit=1000`).then((hits) => {
    body.replaceChildren(...(hits.length ? group(hits).map(hitCard) : [h("p", { class: "muted" }, "暂无筛查命中记录")]));
    body.dataset.ready = "1";
  }).catch((err) => {
    body.replaceChildren(h("p", { class: "error" }, `互联网监测证据读取失败：${err.message}`));
  });
  return card;
}
