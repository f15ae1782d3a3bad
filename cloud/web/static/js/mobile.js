// Inspector mobile view (390 px): my notifications with one-tap acknowledge, my tasks with the checklist
// (results, notes, photos), check-in and submission, my cases' next steps.
import { API, api, blobUrl, clear, daysLeftText, fmtDate, fmtDue, fmtTime, h, label, labels, logout, session, severityBadge, toast, token } from "./api.js";

const root = document.getElementById("root");
let me = null;
let L = null;
let body = null;

const TABS = [["#/notices", "通知"], ["#/tasks", "任务"], ["#/cases", "案件"]];
const OUTCOMES = { pass: "符合", fail: "不符合", na: "不适用" };
// event names some notification titles still carry (notify routes without a Chinese template)
const EVENT_NAMES = { "task.created": "新检查任务", "task.assigned": "检查任务改派", "clue.created": "新线索", "alert.raised": "设备告警" };

function noticeTitle(inc) {
  return inc.title
    .replace(/【([a-z_]+\.[a-z_]+)】/, (m, ev) => `【${EVENT_NAMES[ev] || ev}】`)
    .replace(/\btask (\d+)$/, "检查任务 #$1");
}

// the body's lines (where, what, by when); a "查看…：<url>" line is a link, not a URL to read
function noticeBody(text) {
  return h("div", { class: "notice-body" }, text.split("\n").map((line) => {
    const link = line.match(/^(查看[^：]*)：(https?:\/\/\S+)$/);
    return h("p", { style: "margin:.2em 0" }, link ? h("a", { href: link[2] }, `${link[1]} →`) : line);
  }));
}

function shell() {
  body = h("div", { id: "view" });
  clear(root,
    h("header", {}, h("strong", {}, "执法检查"), h("span", { class: "muted" }, me.full_name || me.username, " ",
      h("button", { type: "button", onclick: logout, "aria-label": "退出登录", style: "min-height:36px" }, "退出"))),
    body,
    h("nav", { class: "tabs", "aria-label": "底部导航" }, TABS.map(([href, text]) => h("a", { href, dataset: { href } }, text))));
}

async function route() {
  const hash = location.hash || "#/notices";
  for (const a of root.querySelectorAll(".tabs a")) {
    if (hash.startsWith(a.dataset.href) || (a.dataset.href === "#/tasks" && hash.startsWith("#/task/"))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const [, page, id] = hash.split("/");
  try {
    if (page === "task" && id) await taskPage(Number(id));
    else if (page === "tasks") await tasksPage();
    else if (page === "cases") await casesPage();
    else await noticesPage();
  } catch (ex) {
    clear(body, h("p", { class: "error", role: "alert" }, ex.message));
  }
}

// ------------------------------------------------------------------ notifications
async function noticesPage() {
  const list = await api("notifications?limit=50");
  list.sort((a, b) => (a.incident.status === "open" ? 0 : 1) - (b.incident.status === "open" ? 0 : 1) || b.id - a.id);
  clear(body, h("h1", {}, "我的通知"),
    list.length ? list.map((n) => {
      const inc = n.incident;
      const open = inc.status === "open";
      const title = noticeTitle(inc);
      return h("article", { class: `item${open ? " unacked" : ""}`, "aria-label": title, dataset: { incident: inc.id } },
        h("div", {}, severityBadge(inc.severity, L.severities), " ", h("strong", {}, title)),
        inc.target_type === "task" && inc.target_id ? h("p", {}, h("a", { href: `#/task/${inc.target_id}` }, "打开任务 →")) : null,
        inc.body ? noticeBody(inc.body) : null,
        h("p", { class: "muted" }, fmtTime(n.created_at), inc.count > 1 ? `　共 ${inc.count} 次` : ""),
        open
          ? h("button", { type: "button", class: "primary wide", onclick: async (e) => {
            e.target.disabled = true;
            try {
              await api(`notifications/incidents/${inc.id}/ack?via=mobile`, { method: "POST" });
              toast("已确认收到");
              noticesPage();
            } catch (ex) { toast(ex.message, "error"); e.target.disabled = false; }
          } }, "确认收到")
          : h("p", { class: "ok" }, `已确认（${inc.acked_by || ""} ${fmtTime(inc.acked_at)}）`));
    }) : h("p", { class: "muted" }, "暂无通知"));
}

// ------------------------------------------------------------------ tasks
async function tasksPage() {
  const tasks = await api("tasks?mine=true");
  clear(body, h("h1", {}, "我的检查任务"),
    tasks.length ? tasks.map((t) => h("a", { href: `#/task/${t.id}`, class: "item", style: "display:block;color:inherit;text-decoration:none" },
      h("strong", {}, `${t.task_no}`), h("div", {}, t.state_label, "　期限 ", fmtDue(t.due_date, t.due_certainty)),
      h("div", { class: "muted" }, t.instructions || t.method))) : h("p", { class: "muted" }, "暂无任务"));
}

async function taskPage(id) {
  const t = await api(`tasks/${id}`);
  const titles = Object.fromEntries(L.checklist.map((i) => [i.code, i]));
  const results = Object.fromEntries(t.results.map((r) => [r.item_code, r]));
  const allowed = new Set(t.allowed_actions || []);
  const err = h("p", { class: "error", role: "alert" });
  const act = async (action, extra = {}) => {
    err.textContent = "";
    try {
      await api(`tasks/${id}/transitions`, { method: "POST", json: { action, expected_version: t.version, ...extra } });
      await taskPage(id);
      scrollTo(0, 0);
    } catch (ex) { err.textContent = ex.message; }
  };
  const head = h("section", { class: "item" },
    h("h1", {}, `任务 ${t.task_no}`),
    h("p", {}, "状态：", h("strong", { id: "task-state" }, t.state_label), "　期限：", fmtDue(t.due_date, t.due_certainty)),
    t.instructions ? h("p", {}, t.instructions) : null,
    t.check_in_view ? h("p", { class: t.check_in_view.geofence === "outside" ? "error" : "ok", id: "check-in-gps" },
      `已签到 ${fmtTime(t.check_in_view.at)}　${t.check_in_view.text}`) : null,
    allowed.has("accept") ? h("button", { type: "button", class: "primary wide", onclick: () => act("accept") }, "接收任务") : null,
    allowed.has("check_in") ? h("button", { type: "button", class: "primary wide", onclick: () => checkIn(act) }, "现场签到") : null,
    allowed.has("decline") ? declineForm(act) : null);
  const editable = t.state === "checked_in";
  const items = t.items.map((code) => checklistItem(t, code, titles[code], results[code], editable));
  const findings = h("textarea", { id: "findings", rows: "3", placeholder: "现场检查情况（必填）" });
  const submit = allowed.has("submit")
    ? h("section", { class: "item" }, h("label", { for: "findings" }, "现场检查情况"), findings,
      h("button", { type: "button", class: "primary wide", id: "submit-task", onclick: () => {
        if (!findings.value.trim()) { err.textContent = "请填写现场检查情况"; findings.focus(); return; }
        act("submit", { findings: findings.value.trim() });
      } }, "提交检查结果"))
    : null;
  const docs = t.documents.length
    ? h("section", { class: "item", "aria-label": "文书" }, h("h2", {}, "文书"),
      t.documents.map((d) => h("div", { class: "doc", dataset: { kind: d.kind } }, h("p", {}, h("strong", {}, d.title), " ", d.doc_no || ""),
        h("div", { class: "doc-body" }),
        h("button", { type: "button", class: "wide", onclick: (e) => showPdf(d, e.target.parentElement) }, `查看${d.title} PDF`))))
    : null;
  // submitted: documents first (the rectification order is what the inspector hands over)
  const site = siteCard(t.site);
  const parts = t.state === "checked_in" || t.state === "assigned" || t.state === "accepted"
    ? [head, err, site, h("h2", {}, "检查项目"), items, submit, docs] : [head, err, docs, site, h("h2", {}, "检查项目"), items];
  clear(body, h("p", {}, h("a", { href: "#/tasks" }, "← 我的任务")), parts);
  for (const d of t.documents) {
    if (d.kind === "rectification_order") {
      api(`documents/${d.id}`).then((full) => {
        const box = body.querySelector(`[data-kind="${d.kind}"] .doc-body`);
        if (box) box.replaceWith(orderSummary(full));
      }).catch(() => {});
    }
  }
}

// where the task is: name, address, party, a way there (geo: for any map app, AMap with GCJ-02), latest readings
function siteCard(site) {
  if (!site) return null;
  const links = site.map
    ? h("p", { class: "row", id: "site-map" },
      h("a", { href: site.map.amap_url, class: "button", target: "_blank", rel: "noopener" }, "高德地图导航"),
      h("a", { href: site.map.geo_uri, class: "button" }, "用地图应用打开"))
    : h("p", { class: "muted" }, "场所未登记坐标");
  const readings = (site.readings || []).length
    ? h("ul", { class: "readings", id: "site-readings" }, site.readings.map((r) => h("li", { class: r.relevant ? "relevant" : "" },
      h("strong", {}, r.name), `：${r.value ?? "—"} ${r.unit || ""}`, h("span", { class: "muted" }, `　${fmtTime(r.ts)}${r.quality === "good" ? "" : `　${r.quality_label}`}`))))
    : h("p", { class: "muted" }, "暂无该场所的读数");
  return h("section", { class: "item", "aria-labelledby": "h-site", id: "task-site" },
    h("h2", { id: "h-site" }, site.name),
    h("p", { id: "site-address" }, site.address || "（地址未登记）"),
    site.party && site.party !== site.name ? h("p", { class: "muted" }, `当事人：${site.party}`) : null,
    links, h("h3", {}, "最新读数"), readings);
}

// 退回/回避 with a reason: the dispatcher sees it on the task and re-dispatches it
function declineForm(act) {
  const reason = h("textarea", { id: "decline-reason", rows: "2", placeholder: "例如：与当事人有亲属关系，申请回避" });
  const box = h("details", { class: "decline" }, h("summary", {}, "退回任务 / 申请回避"),
    h("label", { for: "decline-reason" }, "退回理由（必填）"), reason,
    h("button", { type: "button", class: "wide", id: "decline-task", onclick: () => {
      if (!reason.value.trim()) { reason.focus(); reason.setAttribute("aria-invalid", "true"); return; }
      act("decline", { reason: reason.value.trim() });
    } }, "确认退回"));
  return box;
}

function orderSummary(doc) {
  const o = doc.data || {};
  const signed = (doc.signatures || []).map((s) => s.signer?.name || s.signer?.username || "").filter(Boolean);
  return h("div", { class: "doc-body order", "aria-label": "责令改正通知书内容" },
    h("p", {}, h("strong", {}, (o.party && o.party.name) || ""), "："),
    (o.violations || []).map((v) => h("p", {}, `经检查，${v.fact}，违反了${(v.violated || []).join("、")}的规定。`)),
    (o.requirements || []).length ? h("ul", {}, o.requirements.map((r) => h("li", {}, r))) : null,
    o.deadline ? h("p", {}, "请于 ", h("strong", {}, fmtDate(o.deadline)), " 前改正。") : null,
    h("p", { class: "muted" }, `签发日期 ${fmtDate(o.issued_on)}　电子签名：${signed.join("、") || "—"}`));
}

function checkIn(act) {
  const done = (coords) => act("check_in", { check_in: coords });
  if (navigator.geolocation) {
    navigator.geolocation.getCurrentPosition(
      (p) => done({ lat: p.coords.latitude, lon: p.coords.longitude, note: "移动端签到" }),
      () => done({ note: "移动端签到（未取得定位）" }), { timeout: 3000 });
  } else done({ note: "移动端签到（未取得定位）" });
}

function checklistItem(task, code, item, result, editable) {
  const name = `outcome-${code}`;
  const note = h("textarea", { id: `note-${code}`, rows: "2", placeholder: "说明（不符合时请写明情况）", disabled: !editable }, result?.note || "");
  const photo = h("input", { id: `photo-${code}`, type: "file", accept: "image/*", capture: "environment", disabled: !editable });
  const status = h("p", { class: "muted", "aria-live": "polite" }, result ? `已记录：${OUTCOMES[result.outcome]}，照片 ${result.photos.length} 张` : "未记录");
  const radios = h("div", { class: "choices", role: "radiogroup", "aria-label": `${code} 检查结果` },
    Object.entries(OUTCOMES).map(([v, t]) => h("label", {},
      h("input", { type: "radio", name, value: v, checked: result?.outcome === v, disabled: !editable }), h("span", {}, t))));
  const save = async (e) => {
    const chosen = radios.querySelector("input:checked");
    if (!chosen) { status.textContent = "请先选择检查结果"; return; }
    e.target.disabled = true;
    try {
      await api(`tasks/${task.id}/results/${code}`, { method: "PUT", json: { outcome: chosen.value, note: note.value } });
      let photos = result?.photos?.length || 0;
      if (photo.files.length) {
        const form = new FormData();
        form.append("file", photo.files[0]);
        await api(`tasks/${task.id}/results/${code}/photos`, { method: "POST", form });
        photos += 1;
        photo.value = "";
      }
      result = { outcome: chosen.value, photos: new Array(photos) };
      status.textContent = `已记录：${OUTCOMES[chosen.value]}，照片 ${photos} 张`;
      status.className = "ok";
    } catch (ex) { status.textContent = ex.message; status.className = "error"; }
    e.target.disabled = false;
  };
  return h("section", { class: "item", dataset: { item: code }, "aria-label": `${code} ${item?.title || ""}` },
    h("strong", {}, `${code} ${item?.title || ""}`), item?.requirement ? h("p", { class: "muted" }, item.requirement) : null,
    radios, h("label", { for: `note-${code}` }, "说明"), note, h("label", { for: `photo-${code}` }, "现场照片"), photo,
    editable ? h("button", { type: "button", class: "wide", onclick: save }, "保存本项") : null, status);
}

async function showPdf(doc, box) {
  try {
    const url = await blobUrl(`/api/v1/documents/${doc.id}/pdf`);
    box.querySelector("iframe")?.remove();
    box.append(h("iframe", { src: url, title: doc.title, style: "width:100%;height:420px;border:1px solid #ccc;margin-top:.5rem" }),
      h("a", { href: url, download: `${doc.title}.pdf`, class: "button wide" }, "下载 PDF"));
  } catch (ex) { toast(ex.message, "error"); }
}

// ------------------------------------------------------------------ cases
async function casesPage() {
  const all = await api("cases");
  const mine = all.filter((c) => (c.officers || []).includes(me.id));
  const details = await Promise.all(mine.map((c) => api(`cases/${c.id}`)));
  clear(body, h("h1", {}, "我的案件"),
    details.length ? details.map((c) => h("article", { class: "item" },
      h("strong", {}, `${c.case_no} ${c.party_name || ""}`), h("p", {}, c.state_label),
      c.clocks.filter((k) => k.running).map((k) => h("p", {}, `${k.name}：${fmtDue(k.due, k.certainty)}　`, h("span", { class: `badge st-${k.status}` }, daysLeftText(k.remaining_working_days)))),
      h("p", {}, "下一步：", (c.allowed_actions || []).map((a) => label(L.actions.case, a)).join("、") || "等待他人办理"))) : h("p", { class: "muted" }, "暂无承办案件"));
}

// ------------------------------------------------------------------ start
async function start() {
  me = await session(root, { title: "执法检查移动端", hint: "请使用本人账号登录" });
  L = await labels();
  shell();
  addEventListener("hashchange", route);
  await route();
  // live notifications (the notification service's per-user stream), when it runs in this process
  try {
    const src = new EventSource(`${API}/notifications/stream?access_token=${encodeURIComponent(token())}`);
    src.addEventListener("notification", (e) => {
      const n = JSON.parse(e.data);
      toast(`新通知：${n.title}`, "alert");
      if ((location.hash || "#/notices").startsWith("#/notices")) noticesPage();
    });
  } catch { /* the list still works without the stream */ }
}

start();
