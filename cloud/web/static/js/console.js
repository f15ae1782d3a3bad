// Supervisor PC console: clue board, clue detail (timeline, sources, analysis, evidence, readings chart,
// dispatch and override), tasks and cases with statutory deadlines, subjects with risk grades, scorecards.
import {
  api, beijingMonth, blobUrl, clear, daysLeftText, fmtDate, fmtDue, fmtTime, h, label, labels, liveFeed, logout, session,
  severityBadge, toast,
} from "./api.js";
import { positionsCard } from "./coords.js";
import { internetEvidence } from "./clue-internet.js";
import { chartNotice, loadCharts } from "./charts.js";
import { adminPage } from "./admin.js";
import { devicesPage } from "./devices.js";
import { listPage, statsPage } from "./lists.js";

const root = document.getElementById("root");
let me = null;
let L = null;
let main = null;
let liveDot = null;
const liveAlerts = [];
let onLive = null; // the current page's live handler
let siteNames = {}; // site id → name, for the live alerts (a person reads the name, never the id)
const siteLabel = (id) => siteNames[id] || "未登记的场所";

// every label comes from the one vocabulary (GET /console/labels, cloud/rules/labels.toml + the enums' labels)
const disposal = (code) => label(L.disposals, code);
const grades = () => Object.entries(L.grades).filter(([k]) => k !== "unknown");

function isManager() {
  return me.role === "admin" || me.role === "supervisor";
}

function navItems() {
  const items = [["#/clues", "线索看板"], ["#/deadlines", "任务与案件期限"]];
  items.push(["#/list/clues", "列表检索与导出"]);
  if (me.role !== "inspector") items.push(["#/stats/clues", "统计分析"]);
  if (me.role !== "inspector") items.push(["#/subjects", "市场主体与风险"]);
  if (isManager()) items.push(["#/scores", "考核评分"]);
  if (me.adminAreas.length) items.push([`#/admin/${me.adminAreas[0]}`, "系统管理"]);
  items.push(["#/devices", "待审批设备"]);
  items.push(["/map/", "辖区一张图"]);
  if (me.role === "inspector") items.push(["/m/", "移动端（我的任务）"]);
  if (isManager()) items.push(["/screen/", "态势大屏"], ["/kiosk/", "自助投诉终端"]);
  return items;
}

function shell() {
  liveDot = h("span", { class: "live-dot", title: "实时连接", "aria-hidden": "true" });
  const nav = h(
    "nav",
    { "aria-label": "主导航" },
    h("div", { class: "brand" }, "市场监管数字化监管平台"),
    navItems().map(([href, text]) => h("a", { href, dataset: { href } }, text)),
    h(
      "div",
      { class: "who" },
      h("div", {}, liveDot, h("span", { id: "live-state" }, "实时：连接中")),
      h("div", {}, `${me.full_name || me.username}（${label(L.roles, me.role)}）`),
      h("button", { type: "button", onclick: logout }, "退出登录"),
    ),
  );
  main = h("main", { id: "main", tabindex: "-1" });
  clear(root, h("div", { class: "app" }, nav, main));
}

function markNav() {
  const hash = location.hash || "#/clues";
  for (const a of root.querySelectorAll("nav a[data-href]")) {
    const seg = (x) => x.split("/")[1];
    const here = hash.startsWith(a.dataset.href) || (a.dataset.href === "#/clues" && hash.startsWith("#/clue/"))
      || (["list", "stats", "admin"].includes(seg(a.dataset.href)) && seg(hash) === seg(a.dataset.href));
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

// Navigations run one after another: a page still loading (the clue board waits for its lists) would otherwise
// paint over the page navigated to after it.
let routing = Promise.resolve();
function route() {
  routing = routing.then(renderRoute, renderRoute);
  return routing;
}

async function renderRoute() {
  markNav();
  onLive = null;
  const hash = location.hash || "#/clues";
  const [, page, id] = hash.split("/");
  try {
    if (page === "clue" && id) await clueDetail(Number(id));
    else if (page === "deadlines") await deadlinesPage();
    else if (page === "task" && id) await taskDetail(Number(id));
    else if (page === "case" && id) await caseDetail(Number(id));
    else if (page === "subjects") await subjectsPage();
    else if (page === "scores") await scoresPage();
    else if (page === "list") await listPage(main, id);
    else if (page === "stats") await statsPage(main, id);
    else if (page === "admin") await adminPage(main, id, { L, me });
    else if (page === "devices") await devicesPage(main, id, { L, me });
    else await clueBoard();
  } catch (ex) {
    clear(main, h("p", { class: "error", role: "alert" }, ex.message || String(ex)));
  }
}

// ------------------------------------------------------------------ clue board
const boardState = { status: "open", category: "", channel: "", department: "", subject: "", since: "", until: "", group: "category" };

async function clueBoard() {
  const [departments, subjects] = await Promise.all([
    api("registry/departments").catch(() => []),
    api("registry/subjects?limit=1000").catch(() => []),
  ]);
  const depName = Object.fromEntries(departments.map((d) => [d.id, d.name]));
  const sel = (id, text, key, options) =>
    h("div", {}, h("label", { for: id }, text),
      h("select", { id, onchange: (e) => { boardState[key] = e.target.value; load(); } },
        h("option", { value: "" }, "全部"),
        Object.entries(options).map(([v, t]) => h("option", { value: v, selected: boardState[key] === String(v) }, t))));
  const dateInput = (id, text, key) =>
    h("div", {}, h("label", { for: id }, text),
      h("input", { id, type: "date", value: boardState[key], onchange: (e) => { boardState[key] = e.target.value; load(); } }));
  const filters = h(
    "form",
    { class: "filters", "aria-label": "线索筛选", onsubmit: (e) => e.preventDefault() },
    h("div", { class: "row" },
      sel("f-status", "状态", "status", { open: "待处理", closed: "已办结" }),
      sel("f-channel", "来源渠道", "channel", L.channels),
      sel("f-category", "类别", "category", L.categories),
      sel("f-department", "承办部门", "department", Object.fromEntries(departments.map((d) => [d.id, d.name]))),
      sel("f-subject", "市场主体", "subject", Object.fromEntries(subjects.map((s) => [s.id, s.name]))),
      dateInput("f-since", "起始日期", "since"),
      dateInput("f-until", "截止日期", "until"),
      h("div", {}, h("label", { for: "f-group" }, "分组"),
        h("select", { id: "f-group", onchange: (e) => { boardState.group = e.target.value; render(); } },
          Object.entries({ "": "不分组", category: "按类别", channel: "按渠道", subject: "按主体", department: "按部门", state: "按处理状态" })
            .map(([v, t]) => h("option", { value: v, selected: boardState.group === v }, t)))),
    ),
  );
  const live = h("section", { class: "card", "aria-label": "实时告警" }, h("h2", {}, "实时告警"), h("ul", { id: "live-list", class: "timeline" }));
  const count = h("p", { class: "muted", id: "clue-count" });
  const table = h("table", { id: "clue-table", "aria-label": "线索列表" });
  clear(main, h("h1", {}, "线索看板"), live, filters, count, table);
  renderLive();
  loadOpenAlerts();
  let clues = [];
  let fresh = new Set();

  async function load() {
    const q = new URLSearchParams({ limit: "500" });
    if (boardState.status) q.set("status", boardState.status);
    if (boardState.category) q.set("category", boardState.category);
    if (boardState.subject) q.set("subject_id", boardState.subject);
    if (boardState.since) q.set("since", new Date(`${boardState.since}T00:00:00+08:00`).toISOString());
    const data = await api(`clues?${q}`);
    clues = data.data.filter((c) =>
      (!boardState.channel || c.channel === boardState.channel) &&
      (!boardState.department || String(c.department_id) === boardState.department) &&
      (!boardState.until || new Date(c.first_seen_at) < new Date(`${boardState.until}T24:00:00+08:00`)));
    render();
  }

  function render() {
    count.textContent = `共 ${clues.length} 条线索`;
    const groups = new Map();
    const keyOf = {
      "": () => "",
      category: (c) => label(L.categories, c.category),
      channel: (c) => label(L.channels, c.channel),
      subject: (c) => c.subject_name || "未关联主体",
      department: (c) => depName[c.department_id] || "未指定部门",
      state: (c) => label(L.states.clue, c.state),
    }[boardState.group] || (() => "");
    for (const c of clues) {
      const k = keyOf(c);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(c);
    }
    const rows = [];
    for (const [k, list] of groups) {
      if (k) rows.push(h("tr", { class: "group-head" }, h("td", { colspan: "7" }, `${k}（${list.length}）`)));
      for (const c of list) {
        rows.push(h("tr", {
          class: `clickable${fresh.has(c.id) ? " new-row" : ""}`, tabindex: "0", dataset: { clueId: c.id },
          onclick: () => { location.hash = `#/clue/${c.id}`; },
          onkeydown: (e) => { if (e.key === "Enter") location.hash = `#/clue/${c.id}`; },
        },
        h("td", {}, String(c.id)),
        h("td", {}, h("a", { href: `#/clue/${c.id}` }, c.title)),
        h("td", {}, severityBadge(c.severity, L.severities)),
        h("td", {}, label(L.channels, c.channel)),
        h("td", {}, label(L.states.clue, c.state)),
        h("td", {}, depName[c.department_id] || "—"),
        h("td", {}, fmtTime(c.last_seen_at))));
      }
    }
    clear(table,
      h("thead", {}, h("tr", {}, ["编号", "线索", "等级", "渠道", "处理状态", "承办部门", "最近时间"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: "7", class: "muted" }, "暂无符合条件的线索"))));
  }

  onLive = async (ev) => {
    if (ev.type === "clue" || ev.action === "alert.raised") {
      const cid = ev.payload.clue_id || (ev.type === "clue" ? Number(ev.target_id) : null);
      if (cid) fresh.add(cid);
      await load();
    }
  };
  await load();
}

// an alert of the live feed (or of the overview's open alerts) as a person reads it: the place label (场所·设备),
// never the site id
function alertText(p) {
  return `${p.place || siteLabel(p.site_id)}：${p.message || ""}`;
}

function renderLive() {
  const list = document.getElementById("live-list");
  if (!list) return;
  clear(list, liveAlerts.length
    ? liveAlerts.slice(0, 5).map((a) => h("li", { dataset: { alertId: a.payload.alert_id || "" } },
      h("strong", {}, fmtTime(a.ts)), " ", severityBadge(a.payload.severity, L.severities), " ",
      a.payload.clue_id ? h("a", { href: `#/clue/${a.payload.clue_id}` }, alertText(a.payload)) : alertText(a.payload)))
    : h("li", { class: "muted" }, "暂无未解除的告警（新告警将实时出现在这里，无需刷新）"));
}

// the open alerts when the board opens (the live feed only brings what happens afterwards)
async function loadOpenAlerts() {
  try {
    const o = await api("console/overview");
    const known = new Set(liveAlerts.map((a) => a.payload.alert_id));
    for (const a of o.recent_alerts.filter((x) => x.status === "open" && !known.has(x.id))) {
      liveAlerts.push({ ts: a.started_at, payload: { ...a, alert_id: a.id } });
    }
    renderLive();
  } catch { /* the card keeps the live feed only */ }
}

// ------------------------------------------------------------------ clue detail
async function clueDetail(id) {
  const [clue, timeline, ctx, docs] = await Promise.all([
    api(`clues/${id}`), api(`clues/${id}/timeline`), api(`console/clues/${id}/context`), api(`documents?clue_id=${id}`).catch(() => []),
  ]);
  const decision = clue.decision;
  const info = h("dl", { class: "kv" },
    h("dt", {}, "线索编号"), h("dd", {}, String(clue.id)),
    h("dt", {}, "类别"), h("dd", {}, label(L.categories, clue.category)),
    h("dt", {}, "等级"), h("dd", {}, severityBadge(clue.severity, L.severities)),
    h("dt", {}, "来源渠道"), h("dd", {}, `${label(L.channels, clue.channel)} · ${label(L.kinds, clue.kind)}`),
    h("dt", {}, "处理状态"), h("dd", { id: "clue-state" }, clue.state_label || label(L.states.clue, clue.state)),
    h("dt", {}, "市场主体"), h("dd", {}, clue.subject_name || "—"),
    h("dt", {}, "场所/传感器"), h("dd", { id: "clue-place" }, clue.place || "—"),
    h("dt", {}, "读数"), h("dd", {}, clue.value != null ? `${clue.value} ${clue.unit || ""}` : "—"),
    h("dt", {}, "首次/最近"), h("dd", {}, `${fmtTime(clue.first_seen_at)} / ${fmtTime(clue.last_seen_at)}`),
    h("dt", {}, "归并来源数"), h("dd", {}, String(clue.source_count)),
    clue.result ? [h("dt", {}, "办理结果"), h("dd", {}, clue.result)] : null);
  const analysis = h("section", { class: "card", "aria-labelledby": "h-analysis" }, h("h2", { id: "h-analysis" }, "研判结论与依据"),
    decision
      ? [h("p", {}, h("strong", {}, disposal(decision.disposal)), decision.override ? "（人工改判）" : "",
        `　规则：${decision.rule_name || decision.rule_id}`),
        h("p", { id: "analysis-explanation", style: "white-space:pre-wrap" }, decision.explanation || decision.reason)]
      : h("p", { class: "muted" }, "尚未研判"));
  const sources = h("section", { class: "card", "aria-labelledby": "h-sources" }, h("h2", { id: "h-sources" }, "线索来源"),
    h("table", {}, h("thead", {}, h("tr", {}, ["时间", "渠道", "类型", "摘要"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, clue.sources.map((s) => h("tr", {}, h("td", {}, fmtTime(s.added_at)), h("td", {}, label(L.channels, s.channel)),
        h("td", {}, label(L.kinds, s.kind)), h("td", {}, s.summary || s.ref || "—"))))));
  const tl = h("section", { class: "card", "aria-labelledby": "h-timeline" }, h("h2", { id: "h-timeline" }, "时间线"),
    h("ol", { class: "timeline", id: "clue-timeline" }, timeline.map((e) => h("li", {},
      h("strong", {}, fmtTime(e.ts)), "　", label(L.events, e.action),
      e.payload && e.payload.to ? `：${label(L.states[e.action.split(".")[0]] || L.states.clue, e.payload.to)}` : "",
      e.payload && e.payload.reason ? `（${e.payload.reason}）` : "",
      h("span", { class: "muted" }, `　${e.actor_name || e.actor}`)))));
  const chartBox = h("div", { class: "chart", id: "readings-chart", role: "img", "aria-label": "告警前后传感器读数曲线" });
  const chartCard = h("section", { class: "card", "aria-labelledby": "h-chart" }, h("h2", { id: "h-chart" }, "告警前后读数"), chartBox);
  const evidence = h("section", { class: "card", "aria-labelledby": "h-evidence" }, h("h2", { id: "h-evidence" }, "证据（抓拍与检查照片）"),
    h("div", { class: "thumbs", id: "evidence" }, ctx.evidence.length ? [] : h("p", { class: "muted" }, "暂无图片证据")));
  const documents = h("section", { class: "card", "aria-labelledby": "h-docs" }, h("h2", { id: "h-docs" }, "文书"),
    docs.length ? h("ul", {}, docs.map((d) => h("li", {}, `${d.title} ${d.doc_no || ""} `,
      h("button", { type: "button", onclick: () => openPdf(d.id) }, "查看 PDF")))) : h("p", { class: "muted" }, "暂无文书"));
  const work = h("section", { class: "card", "aria-labelledby": "h-work" }, h("h2", { id: "h-work" }, "检查任务与案件"),
    clue.tasks.length || clue.cases.length
      ? h("ul", {}, clue.tasks.map((t) => h("li", {}, h("a", { href: `#/task/${t.id}` }, `${taskKind(t)} ${t.task_no}`), `　${t.state_label}　期限 ${fmtDue(t.due_date, t.due_certainty)}　检查人员：${(t.assignee_names || []).join("、") || "—"}`)),
        clue.cases.map((c) => h("li", {}, h("a", { href: `#/case/${c.id}` }, `案件 ${c.case_no}`), `　${c.state_label}`)),
        (clue.follow_ups || []).map((f) => followUpItem(clue, f)))
      : h("p", { class: "muted" }, "尚未派发"));
  clear(main,
    h("p", {}, h("a", { href: "#/clues" }, "← 返回线索看板")),
    h("h1", {}, clue.title),
    h("div", { class: "grid2" }, h("div", {}, h("section", { class: "card", "aria-label": "基本信息" }, info), analysis), h("div", {}, chartCard, actionsCard(clue))),
    complaintsCard(clue), linkSubjectCard(clue), similarCard(clue),
    h("div", { class: "grid2" }, sources, tl), clue.channel === "internet_monitoring" ? internetEvidence(clue.id) : null,
    evidence, work, documents);
  drawReadings(chartBox, ctx);
  for (const e of ctx.evidence) {
    blobUrl(e.url).then((url) => document.getElementById("evidence")?.append(
      h("figure", {}, h("img", { src: url, alt: e.label }), h("figcaption", { class: "muted" }, e.label)))).catch(() => {});
  }
  onLive = async (ev) => {
    // someone else's action on this clue; one's own action has re-rendered the page already
    if (ev.payload && ev.payload.clue_id === id && ev.actor !== me.username) toast("该线索有新动态，刷新查看", "info");
  };
}

// a rectification order's 复查: scheduled on its deadline; a dispatcher or head may schedule it early (with a reason)
function followUpItem(clue, f) {
  const li = h("li", { dataset: { followUp: f.id } }, `复查：${f.doc_no} 改正期限 ${fmtDate(f.deadline)}　${f.state_label}`,
    f.waived_reason ? `（批准理由：${f.waived_reason}）` : "");
  if (f.state === "pending" && me.duties.some((d) => ["dispatcher", "department_head"].includes(d))) {
    const why = h("input", { id: `early-reason-${f.id}`, placeholder: "例如 当事人报告已整改，申请复查" });
    const msg = h("span", { class: "error", role: "alert" });
    li.append(h("div", { class: "row" }, why, h("button", { type: "button", id: `early-follow-up-${f.id}`, onclick: async () => {
      msg.textContent = "";
      try {
        const t = await api(`clues/${clue.id}/follow-ups/${f.id}/schedule`, { method: "POST", json: { reason: why.value.trim() } });
        toast(`已安排复查任务 ${t.task_no}（${(t.assignee_names || []).join("、")}）`);
        route();
      } catch (ex) { msg.textContent = ex.message; }
    } }, "提前复查")), msg);
  }
  return li;
}

// the complaints and reports folded into the clue: structured facts, the complainant's contact masked by the server;
// a duty allowed to (受理、监督、局领导) opens the clear contact with a reason (journaled pii.revealed)
const REVEAL_DUTIES = ["intake_clerk", "supervisor", "bureau_head"];
function complaintsCard(clue) {
  const orders = clue.work_orders || [];
  if (!orders.length) return null;
  const row = (dt, dd, id) => (dd ? [h("dt", {}, dt), h("dd", id ? { id } : {}, dd)] : null);
  return h("section", { class: "card", "aria-labelledby": "h-complaints" }, h("h2", { id: "h-complaints" }, "投诉举报内容（事实经过）"),
    orders.map((o) => {
      const contact = h("dd", { id: `wo-contact-${o.id}` }, o.anonymous ? "匿名" : [o.complainant_name, o.complainant_phone, o.complainant_address].filter(Boolean).join("　") || "—");
      const why = h("input", { id: `wo-reason-${o.id}`, placeholder: "查看理由，例如 回访投诉人" });
      const reveal = !o.anonymous && me.duties.some((d) => REVEAL_DUTIES.includes(d))
        ? h("div", { class: "row" }, why, h("button", { type: "button", id: `wo-reveal-${o.id}`, onclick: async () => {
          try {
            const plain = await api(`pii/work-orders/${o.id}?reason=${encodeURIComponent(why.value.trim())}`);
            contact.textContent = [plain.complainant_name, plain.complainant_phone, plain.complainant_address].filter(Boolean).join("　");
            toast("已显示完整联系方式（已记录查看理由）");
          } catch (ex) { toast(ex.message, "error"); }
        } }, "查看完整联系方式"))
        : null;
      return h("dl", { class: "kv", dataset: { workOrder: o.id } },
        row("类型", `${o.kind_label}${o.external_no ? `　工单号 ${o.external_no}` : ""}`),
        h("dt", {}, "投诉（举报）人"), contact, reveal ? [h("dt", {}, ""), h("dd", {}, reveal)] : null,
        row("被投诉（举报）人", [o.respondent_name, o.respondent_address].filter(Boolean).join("　")),
        row("事发时间", o.incident_at ? fmtTime(o.incident_at) : null), row("事发地点", o.incident_place),
        row("涉及商品或服务", o.goods), row("涉及金额", o.amount != null ? `${o.amount} 元` : null),
        row("事实经过", o.facts, `wo-facts-${o.id}`), row("诉求", o.request),
        row("受理期限", o.accept_due ? fmtDate(o.accept_due) : null));
    }));
}

// a complaint or report whose respondent was not matched in the registry: link it to a registered subject
function linkSubjectCard(clue) {
  const open = !["closed", "no_action", "merged"].includes(clue.state);
  if (clue.subject_id != null || !open || !(clue.work_orders || []).length) return null;
  if (!me.duties.some((d) => ["intake_clerk", "analyst", "dispatcher"].includes(d))) return null;
  const q = h("input", { id: "link-subject-q", placeholder: "主体名称或统一社会信用代码" });
  const pick = h("select", { id: "link-subject-id" }, h("option", { value: "" }, "（先查找）"));
  const why = h("input", { id: "link-subject-reason", placeholder: "例如 被举报人即该药店（名称简称）" });
  const msg = h("p", { class: "error", role: "alert" });
  return h("section", { class: "card", "aria-labelledby": "h-link-subject" }, h("h2", { id: "h-link-subject" }, "关联市场主体"),
    h("p", { class: "muted" }, `被投诉（举报）对象“${clue.subject_name || "—"}”未匹配到已登记的市场主体。`),
    h("div", { class: "row" }, q, h("button", { type: "button", onclick: async () => {
      try {
        const found = await api(`registry/subjects?q=${encodeURIComponent(q.value.trim())}&limit=20`);
        clear(pick, found.length ? found.map((x) => h("option", { value: String(x.id) }, `${x.name}　${x.address || ""}`)) : h("option", { value: "" }, "未找到"));
      } catch (ex) { msg.textContent = ex.message; }
    } }, "查找")),
    h("label", { for: "link-subject-id" }, "市场主体"), pick, h("label", { for: "link-subject-reason" }, "理由"), why,
    h("button", { type: "button", id: "link-subject", onclick: async () => {
      msg.textContent = "";
      try {
        await api(`clues/${clue.id}/subject`, { method: "POST", json: { subject_id: Number(pick.value), reason: why.value.trim() } });
        toast("已关联市场主体");
        route();
      } catch (ex) { msg.textContent = ex.message; }
    } }, "关联"), msg);
}

// open clues that may be the same subject and matter: open one, or merge this clue into it (when still mergeable)
function similarCard(clue) {
  const list = clue.similar || [];
  if (!list.length) return null;
  const canMerge = (clue.allowed_actions || []).includes("merge");
  const msg = h("p", { class: "error", role: "alert" });
  return h("section", { class: "card", "aria-labelledby": "h-similar" }, h("h2", { id: "h-similar" }, "可能重复的线索"),
    h("ul", { id: "similar-clues" }, list.map((c) => h("li", {}, h("a", { href: `#/clue/${c.id}` }, c.title), `　${c.state_label}　（${c.why}）`,
      canMerge ? [" ", h("button", { type: "button", dataset: { mergeInto: c.id }, onclick: async () => {
        msg.textContent = "";
        try {
          await api(`clues/${clue.id}/transitions`, { method: "POST", json: { action: "merge", merge_into: c.id, reason: `与线索 ${c.id} 为同一主体同一事项`, expected_version: clue.version } });
          toast(`已并入线索 ${c.id}`);
          location.hash = `#/clue/${c.id}`;
        } catch (ex) { msg.textContent = ex.message; }
      } }, "并入该线索")] : null))), msg);
}

function actionsCard(clue) {
  const allowed = new Set(clue.allowed_actions || []);
  const msg = h("p", { class: "error", role: "alert", id: "action-error" });
  const card = h("section", { class: "card", "aria-labelledby": "h-actions" }, h("h2", { id: "h-actions" }, "处置操作"));
  if (allowed.has("dispatch")) {
    // only dispositions dispatch can carry out; the analysis' own choice is preselected when it is one of them
    const disp = h("select", { id: "dispatch-disposal" },
      h("option", { value: "inspect" }, "现场检查"), h("option", { value: "open_case" }, "登记案源"));
    const hint = h("p", { class: "muted", id: "dispatch-hint" });
    const due = h("input", { id: "dispatch-due", type: "date" });
    const instr = h("textarea", { id: "dispatch-instructions", rows: "2", placeholder: "例如：核查冷藏柜温度记录与药品储存情况" });
    const people = h("fieldset", { id: "dispatch-people", class: "people" }, h("legend", {}, "检查人员（按辖区、在办工作量、回避建议）"),
      h("p", { class: "muted" }, "正在加载候选人员…"));
    const chosen = () => [...people.querySelectorAll("input[type=checkbox]:checked")].map((c) => Number(c.value));
    api(`console/clues/${clue.id}/candidates`).then((cand) => {
      if (cand.default_disposal) disp.value = cand.default_disposal;
      const d = cand.decision ? disposal(cand.decision) : "未研判";
      hint.textContent = cand.default_disposal ? `研判结论：${d}` : `研判结论为“${d}”，不能直接派发；请选择处置方式（将记录为派发人的决定）`;
      clear(people, h("legend", {}, `检查人员（至少 ${cand.needed} 名；按辖区、在办工作量、回避建议）`),
        cand.candidates.length ? cand.candidates.map((c) => h("label", { class: "person" },
          h("input", { type: "checkbox", value: String(c.user_id), name: "assignee", ...(c.suggested ? { checked: "" } : {}), ...(c.recused ? { disabled: "" } : {}) }),
          ` ${c.name}`, h("span", { class: "muted" },
            `　${c.department || "未分配部门"}${c.in_jurisdiction ? "" : "（非辖区）"}　在办 ${c.open_workload} 件`
            + (c.recused ? `　应回避：${c.recusal_reason}` : "") + (c.suggested ? "　建议" : ""))))
          : h("p", { class: "error" }, "没有可派的检查人员：请在“人员”中为检查人员设置职责和部门"));
    }).catch((ex) => { clear(people, h("p", { class: "error" }, ex.message)); });
    card.append(h("form", { "aria-label": "派发", onsubmit: async (e) => {
      e.preventDefault();
      msg.textContent = "";
      const body = { instructions: instr.value, disposal: disp.value };
      if (disp.value === "inspect" && chosen().length) body.assignees = chosen();
      if (due.value) body.due_date = due.value;
      try {
        const r = await api(`clues/${clue.id}/dispatch`, { method: "POST", json: body });
        const names = r.task?.assignee_names?.join("、");
        toast(r.task ? `已派发检查任务 ${r.task.task_no}${names ? `（${names}）` : ""}` : `已登记案源 ${r.case?.case_no || ""}`);
        route();
      } catch (ex) { msg.textContent = ex.message; }
    } },
    h("h3", {}, "派发"),
    h("label", { for: "dispatch-disposal" }, "处置方式"), disp, hint,
    people,
    h("label", { for: "dispatch-due" }, "办理期限（不填按规定自动计算）"), due,
    h("label", { for: "dispatch-instructions" }, "工作要求"), instr,
    h("button", { type: "submit", class: "primary", id: "dispatch-button", style: "margin-top:.6rem" }, "派发")));
  }
  const terminal = ["closed", "no_action", "merged"].includes(clue.state);
  if (!terminal && me.duties.some((d) => ["analyst", "dispatcher", "supervisor", "department_head", "bureau_head"].includes(d))) {
    const why = h("input", { id: "override-reason", placeholder: "改判须填写理由" });
    const overrideSel = h("select", { id: "override-disposal" }, Object.entries(L.disposals).map(([v, t]) => h("option", { value: v }, t)));
    card.append(h("form", { "aria-label": "改变研判结论", onsubmit: async (e) => {
      e.preventDefault();
      msg.textContent = "";
      try {
        await api(`clues/${clue.id}/decision`, { method: "POST", json: { disposal: overrideSel.value, reason: why.value } });
        toast("已改变研判结论");
        route();
      } catch (ex) { msg.textContent = ex.message; }
    } }, h("h3", {}, "改变研判结论"), h("label", { for: "override-disposal" }, "新的处置方式"), overrideSel,
    h("label", { for: "override-reason" }, "改判理由"), why,
    h("button", { type: "submit", style: "margin-top:.6rem" }, "改判")));
  }
  const others = [...allowed].filter((a) => a !== "dispatch" && a !== "merge");
  if (others.length) {
    // its own form: 办结 / 不予处理 / 撤回 … with the result or reason they need (not the 改判 form's)
    const reason = h("textarea", { id: "action-reason", rows: "2", placeholder: "办结时填写办理结果；不予处理、撤回、重新打开须填写理由" });
    const obligations = clue.closing_obligations || [];
    const mayOverride = others.includes("close") && obligations.length && me.duties.includes("department_head");
    const overrideReason = mayOverride ? h("textarea", { id: "close-override-reason", rows: "2", placeholder: "确需办结时填写批准理由（记录日志并报送监督）" }) : null;
    card.append(h("form", { "aria-label": "线索处置", id: "clue-transition-form", onsubmit: (e) => e.preventDefault() },
      h("h3", {}, "办结与其他操作"),
      obligations.length && others.includes("close")
        ? h("div", { class: "notice", id: "closing-obligations", role: "note" }, h("strong", {}, "尚不能办结："), h("ul", {}, obligations.map((o) => h("li", {}, o))))
        : null,
      h("label", { for: "action-reason" }, "办理结果 / 理由"), reason,
      overrideReason ? [h("label", { for: "close-override-reason" }, "批准办结理由（负责人）"), overrideReason] : null,
      transitionButtons("clue", "clues", clue, others, { reason, msg, extra: () => (overrideReason?.value.trim() ? { override_reason: overrideReason.value.trim() } : {}) })));
  }
  if (card.childElementCount === 1) card.append(h("p", { class: "muted" }, "当前状态下您没有可执行的操作"));
  card.append(msg);
  return card;
}

/** One button per state-machine action of `kind` ("clue" | "case"), each POSTing `<path>/<id>/transitions` with the
 * reason and the version it was shown at; on success the page is rendered again (state, clocks, timeline), on
 * failure the server's Chinese detail (409 conflict, 403 wrong duty, 422 missing reason) goes to `msg`. */
function transitionButtons(kind, path, obj, actions, { reason, msg, needsReason = new Set(), extra = () => ({}) }) {
  return h("div", { class: "row", id: `${kind}-actions` }, actions.map((a) => h("button", {
    type: "button", dataset: { action: a },
    title: needsReason.has(a) ? "须填写理由" : null,
    onclick: async (e) => {
      const button = e.currentTarget;
      msg.textContent = "";
      button.disabled = true;
      try {
        await api(`${path}/${obj.id}/transitions`, {
          method: "POST", json: { action: a, reason: reason?.value.trim() || null, expected_version: obj.version, ...(a === "close" ? extra() : {}) },
        });
        toast(`已${label(L.actions[kind], a)}`);
        await route();
      } catch (ex) {
        msg.textContent = ex.message;
        button.disabled = false;
      }
    },
  }, label(L.actions[kind], a))));
}

let machinesPromise = null;
/** The state machines with their transitions (`/workflow/machines`), fetched once: which actions need a reason. */
function machines() {
  machinesPromise ??= api("workflow/machines").catch(() => { machinesPromise = null; return {}; });
  return machinesPromise;
}

async function drawReadings(box, ctx) {
  const w = ctx.window;
  if (!w) {
    chartNotice(box, "该线索没有关联的传感器读数");
    return;
  }
  const q = new URLSearchParams({ start: w.start, end: w.end, limit: "5000" });
  let series;
  try {
    series = await api(`telemetry/sites/${encodeURIComponent(w.site_id)}/sensors/${encodeURIComponent(w.sensor_id)}/readings?${q}`);
  } catch (ex) {
    chartNotice(box, `读数无法加载：${ex.message}`);
    return;
  }
  const points = series.readings.filter((r) => r.value != null).map((r) => [r.ts, r.value]);
  box.dataset.points = String(points.length);
  const { echarts, hint } = await loadCharts();
  if (!echarts) {
    box.style.height = "auto";
    clear(box, h("p", { class: "notice" }, hint),
      h("table", { "aria-label": "读数" }, h("thead", {}, h("tr", {}, h("th", {}, "时间"), h("th", {}, `读数（${w.unit || ""}）`))),
        h("tbody", {}, points.slice(-30).map(([t, v]) => h("tr", {}, h("td", {}, fmtTime(t)), h("td", {}, String(v)))))));
    return;
  }
  const chart = echarts.init(box);
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    grid: { left: 50, right: 30, top: 30, bottom: 40 },
    xAxis: { type: "time", axisLabel: { formatter: (v) => fmtTime(new Date(v).toISOString()).slice(11) } },
    yAxis: { type: "value", name: w.unit || "", scale: true },
    series: [{
      name: w.sensor_id, type: "line", showSymbol: points.length < 60, data: points,
      markLine: {
        symbol: "none",
        data: [
          ...(w.limit != null ? [{ yAxis: w.limit, name: "限值", label: { formatter: `限值 ${w.limit}` }, lineStyle: { color: "#c0262d", type: "dashed" } }] : []),
          { xAxis: w.alert_at, name: "告警", label: { formatter: "告警" }, lineStyle: { color: "#b54708" } },
        ],
      },
    }],
  });
  box.dataset.ready = "1";
  addEventListener("resize", () => chart.resize());
}

async function openPdf(docId) {
  try {
    window.open(await blobUrl(`/api/v1/documents/${docId}/pdf`), "_blank");
  } catch (ex) { toast(ex.message, "error"); }
}

// ------------------------------------------------------------------ deadlines, tasks, cases
async function deadlinesPage() {
  const rows = await api("console/deadlines");
  clear(main, h("h1", {}, "任务与案件期限"),
    h("p", { class: "muted" }, "按法定期限由近及远排列；剩余天数按工作日（含法定节假日调休）计算。"),
    h("table", { "aria-label": "期限列表", id: "deadline-table" },
      h("thead", {}, h("tr", {}, ["类型", "编号", "事项", "状态", "期限", "到期日", "剩余"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.length ? rows.map((r) => h("tr", { class: "clickable", onclick: () => { location.hash = `#/${r.kind}/${r.id}`; } },
        h("td", {}, r.kind === "task" ? "检查任务" : "案件"), h("td", {}, h("a", { href: `#/${r.kind}/${r.id}` }, r.no)), h("td", {}, r.title),
        h("td", {}, r.state_label), h("td", {}, r.deadline), h("td", {}, fmtDue(r.due, r.certainty)),
        h("td", {}, h("span", { class: `badge st-${r.status}` }, daysLeftText(r.remaining_working_days)))))
        : h("tr", {}, h("td", { colspan: "7", class: "muted" }, "暂无在办任务或案件")))));
}

// a 复查 (follow-up inspection of a rectification order) is named as such
const taskKind = (t) => (t.method === "复查" ? "复查任务" : "检查任务");

async function taskDetail(id) {
  const t = await api(`tasks/${id}`);
  const titles = Object.fromEntries(L.checklist.map((i) => [i.code, i.title]));
  const results = Object.fromEntries(t.results.map((r) => [r.item_code, r]));
  clear(main, h("p", {}, t.clue_id ? h("a", { href: `#/clue/${t.clue_id}` }, "← 返回线索") : h("a", { href: "#/deadlines" }, "← 返回")),
    h("h1", {}, `${taskKind(t)} ${t.task_no}`),
    h("dl", { class: "kv card" }, h("dt", {}, "状态"), h("dd", {}, t.state_label), h("dt", {}, "检查方式"), h("dd", {}, t.method),
      h("dt", {}, "检查人员"), h("dd", { id: "task-assignees" }, (t.assignee_names || []).join("、") || "—"),
      h("dt", {}, "办理期限"), h("dd", {}, fmtDue(t.due_date, t.due_certainty)),
      h("dt", {}, "场所"), h("dd", { id: "task-site" }, t.site ? `${t.site.name}　${t.site.address || "（地址未登记）"}` : "—"),
      h("dt", {}, "签到"), h("dd", { id: "task-check-in" }, t.check_in_view ? `${fmtTime(t.check_in_view.at)}　${t.check_in_view.text}${t.check_in_view.note ? `　${t.check_in_view.note}` : ""}` : "未签到"),
      t.decline_reason ? [h("dt", {}, "退回理由"), h("dd", { id: "task-decline-reason" }, `${t.decline_reason}（${t.declined_by || ""}）`)] : null,
      h("dt", {}, "结论"), h("dd", {}, t.conclusion_label || "—"), h("dt", {}, "工作要求"), h("dd", {}, t.instructions || "—")),
    h("h2", {}, "检查项目"),
    h("table", {}, h("thead", {}, h("tr", {}, ["项目", "结果", "说明", "照片"].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, t.items.map((code) => {
        const r = results[code];
        return h("tr", {}, h("td", {}, `${code} ${titles[code] || ""}`),
          h("td", {}, r ? label(L.outcomes, r.outcome) : "未检查"), h("td", {}, r?.note || ""), h("td", {}, String(r?.photos?.length || 0)));
      }))),
    h("h2", {}, "文书"),
    t.documents.length ? h("ul", {}, t.documents.map((d) => h("li", {}, `${d.title} ${d.doc_no || ""} `, h("button", { type: "button", onclick: () => openPdf(d.id) }, "查看 PDF"))))
      : h("p", { class: "muted" }, "暂无文书"),
    reviewCard(t), redispatchCard(t));
}

// a task the inspectors declined (with their reason): the dispatcher sends it to other inspectors
function redispatchCard(t) {
  if (!(t.allowed_actions || []).includes("reassign")) return null;
  const msg = h("p", { class: "error", role: "alert", id: "redispatch-error" });
  return h("section", { class: "card", "aria-labelledby": "h-redispatch" }, h("h2", { id: "h-redispatch" }, "重新派发"),
    h("p", {}, "检查人员已退回该任务，系统将按辖区、工作量和回避另选检查人员。"),
    h("button", { type: "button", class: "primary", id: "task-reassign", onclick: async () => {
      msg.textContent = "";
      try {
        const r = await api(`tasks/${t.id}/transitions`, { method: "POST", json: { action: "reassign", expected_version: t.version } });
        toast(`已重新派发 ${r.task_no}（${(r.assignee_names || []).join("、")}）`);
        route();
      } catch (ex) { msg.textContent = ex.message; }
    } }, "重新派发"), msg);
}

// PC review of a submitted task: 审核完结 (a rectification order schedules its 复查) or 退回补充 with a reason
function reviewCard(t) {
  const allowed = new Set(t.allowed_actions || []);
  if (!allowed.has("close") && !allowed.has("return")) return null;
  const msg = h("p", { class: "error", role: "alert", id: "review-error" });
  const reason = h("textarea", { id: "review-reason", rows: "2", placeholder: "退回补充须填写理由" });
  const act = async (action) => {
    msg.textContent = "";
    try {
      const r = await api(`tasks/${t.id}/transitions`, { method: "POST", json: { action, reason: reason.value || undefined } });
      toast(action === "close" ? `已审核完结 ${r.task_no}` : `已退回 ${r.task_no}`);
      route();
    } catch (ex) { msg.textContent = ex.message; }
  };
  return h("section", { class: "card", "aria-labelledby": "h-review" }, h("h2", { id: "h-review" }, "审核"),
    h("label", { for: "review-reason" }, "审核意见 / 退回理由"), reason,
    h("div", { class: "actions" },
      allowed.has("close") ? h("button", { type: "button", class: "primary", id: "review-close", onclick: () => act("close") }, "审核通过并完结") : null,
      allowed.has("return") ? h("button", { type: "button", id: "review-return", onclick: () => act("return") }, "退回补充") : null),
    msg);
}

async function caseDetail(id) {
  const [c, defs] = await Promise.all([api(`cases/${id}`), machines()]);
  const needsReason = new Set((defs.case?.transitions || []).filter((t) => t.requires_reason && t.from.includes(c.state)).map((t) => t.action));
  const allowed = c.allowed_actions || [];
  const msg = h("p", { class: "error", role: "alert", id: "case-action-error" });
  const reason = h("textarea", { id: "case-reason", rows: "2", placeholder: "不予立案、退回补充调查、终止案件等须填写理由" });
  const actions = h("section", { class: "card", "aria-labelledby": "h-case-actions" }, h("h2", { id: "h-case-actions" }, "下一步可办理"),
    allowed.length
      ? [allowed.some((a) => needsReason.has(a)) ? [h("label", { for: "case-reason" }, "理由 / 意见"), reason] : null,
        transitionButtons("case", "cases", c, allowed, { reason, msg, needsReason })]
      : h("p", { class: "muted" }, "当前状态下您没有可办理的操作"),
    msg);
  clear(main, h("p", {}, c.clue_id ? h("a", { href: `#/clue/${c.clue_id}` }, "← 返回线索") : h("a", { href: "#/deadlines" }, "← 返回")),
    h("h1", {}, `案件 ${c.case_no}`),
    h("dl", { class: "kv card" }, h("dt", {}, "当事人"), h("dd", {}, c.party_name || "—"), h("dt", {}, "状态"), h("dd", { id: "case-state" }, c.state_label),
      h("dt", {}, "案情"), h("dd", {}, c.summary || "—")),
    h("h2", {}, "法定期限"),
    h("table", {}, h("thead", {}, h("tr", {}, ["期限", "起算", "到期", "状态", "剩余", "依据"].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, c.clocks.map((k) => h("tr", {}, h("td", {}, k.name), h("td", {}, fmtDate(k.start)), h("td", {}, fmtDue(k.due, k.certainty)),
        h("td", {}, h("span", { class: `badge st-${k.status}` }, label(L.clock_status, k.status))),
        h("td", {}, daysLeftText(k.remaining_working_days)), h("td", { class: "muted" }, Array.isArray(k.basis) ? k.basis.join("；") : k.basis || ""))))),
    actions);
}

// ------------------------------------------------------------------ subjects
async function subjectsPage() {
  const grade = h("select", { id: "grade-filter", onchange: () => load() }, h("option", { value: "" }, "全部等级"), grades().map(([v, t]) => h("option", { value: v }, t)));
  const q = h("input", { id: "subject-q", type: "search", placeholder: "名称或统一社会信用代码" });
  const table = h("table", { "aria-label": "市场主体" });
  const detail = h("div", { id: "subject-detail" });
  clear(main, h("h1", {}, "市场主体与风险等级"),
    h("form", { class: "filters row", role: "search", onsubmit: (e) => { e.preventDefault(); load(); } },
      h("div", {}, h("label", { for: "subject-q" }, "搜索"), q), h("div", {}, h("label", { for: "grade-filter" }, "风险等级"), grade),
      h("div", {}, h("button", { type: "submit", class: "primary" }, "查询"))),
    table, detail);
  async function load() {
    const p = new URLSearchParams({ limit: "500" });
    if (grade.value) p.set("risk_grade", grade.value);
    if (q.value.trim()) p.set("q", q.value.trim());
    const rows = await api(`registry/subjects?${p}`);
    clear(table, h("thead", {}, h("tr", {}, ["名称", "统一社会信用代码", "风险等级", "地址"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((s) => h("tr", { class: "clickable", onclick: () => showRisk(s) },
        h("td", {}, s.name), h("td", {}, s.uscc), h("td", {}, h("span", { class: `badge grade-${s.risk_grade}` }, L.grades[s.risk_grade] || L.grades.unknown)), h("td", {}, s.address || "—")))));
  }
  async function showRisk(s) {
    const recs = await api(`risk/subjects/${s.id}`).catch(() => []);
    clear(detail, h("section", { class: "card" }, h("h2", {}, `${s.name} · 风险评级记录`),
      recs.length ? h("ul", {}, recs.map((r) => h("li", {}, `${fmtTime(r.computed_at)}　${r.previous ? `${r.previous} → ` : ""}${r.grade} 级（${r.score} 分）　${r.explanation}`)))
        : h("p", { class: "muted" }, "暂无评级记录")), await positionsCard(s, ["admin", "supervisor"].includes(me.role)));
  }
  await load();
}

// ------------------------------------------------------------------ scorecards
async function scoresPage() {
  const month = h("input", { id: "score-month", type: "month", value: beijingMonth() });
  const scope = h("select", { id: "score-scope" }, h("option", { value: "person" }, "个人"), h("option", { value: "department" }, "部门"));
  const out = h("div", { id: "scores" });
  clear(main, h("h1", {}, "考核评分"),
    h("form", { class: "filters row", onsubmit: (e) => { e.preventDefault(); load(); } },
      h("div", {}, h("label", { for: "score-month" }, "考核月份"), month), h("div", {}, h("label", { for: "score-scope" }, "范围"), scope),
      h("div", {}, h("button", { type: "submit", class: "primary" }, "计算"))), out);
  async function load() {
    try {
      const cards = await api(`assessment/scorecards?month=${month.value}&scope=${scope.value}`);
      const dims = [...new Set(cards.flatMap((c) => Object.keys(c.dimensions)))];
      const total = (c) => (c.scored === false ? -1 : c.total);
      clear(out, cards.length ? h("table", { "aria-label": "考核得分", id: "score-table" },
        h("thead", {}, h("tr", {}, h("th", {}, scope.value === "person" ? "人员" : "部门"),
          scope.value === "person" ? h("th", {}, "所在部门") : null,
          dims.map((d) => h("th", {}, label(L.dimensions, d))), h("th", {}, "总分"))),
        h("tbody", {}, cards.sort((a, b) => total(b) - total(a)).map((c) => h("tr", { class: c.scored === false ? "muted" : null },
          h("td", {}, c.name || c.key),
          scope.value === "person" ? h("td", {}, c.department_name || "—") : null,
          c.scored === false
            ? h("td", { colspan: String(dims.length + 1), class: "muted" }, "无数据（本期没有可考核的工作，不评分）")
            : [dims.map((d) => h("td", {}, (c.dimensions[d] ?? 0).toFixed(1))), h("td", {}, h("strong", {}, c.total.toFixed(1)))]))))
        : h("p", { class: "muted" }, "该期间暂无考核数据"));
    } catch (ex) { clear(out, h("p", { class: "error" }, ex.message)); }
  }
  await load();
}

// ------------------------------------------------------------------ start
async function start() {
  me = await session(root, { title: "市场监管数字化监管平台", hint: "监管控制台 · 请使用本人账号登录" });
  L = await labels();
  siteNames = Object.fromEntries((await api("registry/sites?include_deactivated=true").catch(() => [])).map((s) => [s.site_id, s.name]));
  // the 系统管理 pages this account role may use ([administration] of cloud/rules/duties.toml)
  me.adminAreas = (await api("registry/admin-areas").catch(() => [])).filter((a) => a.allowed).map((a) => a.area);
  shell();
  liveFeed((ev) => {
    document.body.dataset.liveEvent = String(ev.id); // the last journal event handled (tests wait for it)
    if (ev.action === "alert.cleared") {
      const at = liveAlerts.findIndex((a) => a.payload.alert_id === ev.payload.alert_id);
      if (at >= 0) { liveAlerts.splice(at, 1); renderLive(); }
    }
    if (ev.action === "alert.raised") {
      liveAlerts.unshift(ev);
      renderLive();
      toast(`新告警：${alertText(ev.payload)}`, "alert");
    }
    if (onLive) onLive(ev);
  }, (on) => {
    liveDot.classList.toggle("on", on);
    document.getElementById("live-state").textContent = on ? "实时：已连接" : "实时：重连中";
  });
  addEventListener("hashchange", route);
  await route();
}

start();
