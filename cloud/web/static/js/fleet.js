// Fleet view (边缘设备一览): every edge agent with online state, last seen, versions (reported / desired, 未同步 when
// they differ), outbox, clock, CPU/memory and its open alerts (an offline agent's alerts are "状态未知").
// Data: GET /api/v1/fleet/agents, refreshed every 15 s.
// An administrator also gets the remote commands (issue 15): a target — one agent, the agents ticked in the table,
// a site, a domain or a department with its sub-departments — then push a site configuration, rule pack or register
// map (uploaded or pasted, with a reason), ping, reload, fetch the last log lines, a camera snapshot or a recorded
// range (export); one agent's commands are listed with their state and result, a group's progress (counts per
// state, each agent's result, cancel) under 批量命令进度. Open commands and groups refresh every 3 s.
import { api, blobUrl, clear, fmtTime, h, labels, session, toast } from "./api.js";

const root = document.getElementById("root");
const REFRESH_MS = 15000;
const OPEN_REFRESH_MS = 3000;
const COMMANDS = [
  { name: "push_config", label: "下发站点配置", text: "config" },
  { name: "push_rule_pack", label: "下发规则包", text: "text", named: true },
  { name: "push_register_map", label: "下发寄存器映射", text: "text", named: true },
  { name: "ping", label: "连通测试" },
  { name: "reload", label: "重新加载配置" },
  { name: "logs", label: "获取日志" },
  { name: "snapshot", label: "抓拍画面", camera: true },
  { name: "export_range", label: "导出录像", camera: true, range: true },
];
const TARGETS = [
  { kind: "one", label: "单台代理" },
  { kind: "agents", label: "指定多台（在上表勾选）" },
  { kind: "site", label: "场所" },
  { kind: "category", label: "领域" },
  { kind: "department", label: "部门（含下级部门）" },
];

let me = null;
let selected = null; // "site/agent"
let agentsNow = [];
const ticked = new Set(); // "site/agent" ticked in the table (target 指定多台)
let reference = { sites: [], departments: [], domains: {} };
let openTimer = null;
let groupTimer = null;
const tableBox = h("div", { id: "fleet-table" });
const commandBox = h("section", { id: "fleet-commands", "aria-label": "远程命令" });
const groupBox = h("section", { id: "fleet-groups", "aria-label": "批量命令进度" });

function num(v, digits = 1, unit = "") {
  return v == null ? "—" : `${Number(v).toFixed(digits)}${unit}`;
}

function silentText(s) {
  if (s < 90) return `${Math.round(s)} 秒前`;
  if (s < 5400) return `${Math.round(s / 60)} 分钟前`;
  return `${Math.round(s / 3600)} 小时前`;
}

function clockCell(a) {
  const text = a.clock_offset_s == null ? "—" : `${a.clock_offset_s > 0 ? "+" : ""}${a.clock_offset_s.toFixed(1)} 秒`;
  return h("td", { class: a.clock_skewed ? "error" : "" }, a.clock_skewed ? `${text}（时钟偏差）` : text);
}

function alertsCell(a) {
  if (!a.open_alerts.length) return h("td", {}, "无");
  return h("td", {}, h("ul", { class: "plain" }, a.open_alerts.map((x) =>
    h("li", { dataset: { state: x.state } }, h("span", { class: `badge sev-${x.severity}` }, x.state_label), " ", x.message))));
}

// desired vs reported for the site file, every rule pack and register map; a difference is marked 未同步 with why
function versionCell(a) {
  const rows = a.versions || [];
  if (!rows.length) return h("td", {}, "—");
  return h("td", { class: a.versions_in_sync ? "" : "error" }, h("ul", { class: "plain versions" }, rows.map((v) =>
    h("li", { dataset: { artifact: `${v.kind}/${v.name}`, sync: v.in_sync === false ? "drift" : v.in_sync ? "ok" : "none" } },
      `${v.label}：`,
      h("span", { title: "代理上报的生效版本" }, v.reported || "—"),
      v.in_sync === false ? h("span", { class: "badge sev-major" }, ` ≠ 期望 ${v.desired}（${v.sync_label}）`) : null,
      v.in_sync ? h("span", { class: "muted" }, `（${v.sync_label}）`) : null,
      v.note ? h("div", { class: "muted" }, v.note) : null))));
}

const isAdmin = () => me && me.role === "admin";

function tickBox(key) {
  return h("input", {
    type: "checkbox", "aria-label": `选择 ${key}`, dataset: { tick: key }, checked: ticked.has(key),
    onchange: (ev) => { if (ev.target.checked) ticked.add(key); else ticked.delete(key); showTicked(); },
  });
}

function render(agents) {
  agentsNow = agents;
  const online = agents.filter((a) => a.online).length;
  const headers = ["场所", "代理", "状态", "最后联系", "软件版本", "版本（上报 / 期望）", "缓存深度", "时钟偏差", "CPU", "内存", "未结告警"];
  if (isAdmin()) headers.unshift("选择");
  if (isAdmin()) headers.push("操作");
  clear(tableBox,
    h("p", { class: "muted", id: "fleet-summary" }, `共 ${agents.length} 台，在线 ${online}，离线 ${agents.length - online}`),
    h("table", { class: "table", "aria-label": "边缘设备" },
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
      h("tbody", {}, agents.map((a) => {
        const key = `${a.site_id}/${a.agent_id}`;
        return h("tr", { dataset: { agent: key }, class: key === selected ? "selected" : "" },
          isAdmin() ? h("td", {}, tickBox(key)) : null,
          h("td", { title: `场所 ID ${a.site_id}` }, a.site_name || a.site_id),
          h("td", { title: a.incarnation ? `实例 ${a.incarnation}` : "" }, a.agent_id),
          h("td", { class: a.online ? "ok" : "error" }, a.online_label),
          h("td", { title: fmtTime(a.last_seen_at) }, silentText(a.silent_s)),
          h("td", {}, a.agent_version || "—"),
          versionCell(a),
          h("td", {}, a.outbox_depth == null ? "—" : String(a.outbox_depth)),
          clockCell(a),
          h("td", {}, num(a.cpu_percent, 1, "%")),
          h("td", {}, num(a.rss_mb, 0, " MB")),
          alertsCell(a),
          isAdmin() ? h("td", {}, h("button", { type: "button", onclick: () => select(key) }, "远程命令")) : null,
        );
      })),
    ),
  );
  const one = document.getElementById("cmd-agent");
  if (one) {
    const keep = one.value;
    clear(one, agentOptions());
    one.value = keep;
  }
}

// an agent as a person names it: its site's registered name and the agent's id on that site
function agentName(siteId, agentId) {
  const a = agentsNow.find((x) => x.site_id === siteId && x.agent_id === agentId);
  return a && a.site_name ? `${a.site_name} · ${agentId}` : `${siteId}/${agentId}`;
}

function agentOptions() {
  return agentsNow.map((a) => h("option", { value: `${a.site_id}/${a.agent_id}` }, `${agentName(a.site_id, a.agent_id)}（${a.online_label}）`));
}

function showTicked() {
  const box = document.getElementById("cmd-ticked");
  const names = [...ticked].sort().map((key) => agentName(...key.split("/")));
  if (box) box.textContent = ticked.size ? `已选 ${ticked.size} 台：${names.join("、")}` : "尚未勾选代理";
}

function select(key) {
  selected = key;
  const kind = document.getElementById("cmd-target-kind");
  const one = document.getElementById("cmd-agent");
  if (kind && one) {
    kind.value = "one";
    one.value = key;
    kind.dispatchEvent(new Event("change"));
  }
  refreshCommands();
  document.querySelectorAll("tr[data-agent]").forEach((tr) => tr.classList.toggle("selected", tr.dataset.agent === key));
}

function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

// departments as a tree: each under its parent, indented
function departmentOptions() {
  const children = new Map();
  for (const d of reference.departments) {
    const list = children.get(d.parent_id ?? null) || [];
    list.push(d);
    children.set(d.parent_id ?? null, list);
  }
  const out = [];
  const walk = (parent, depth) => {
    for (const d of (children.get(parent) || []).sort((a, b) => a.name.localeCompare(b.name, "zh"))) {
      out.push(h("option", { value: String(d.id) }, `${"　".repeat(depth)}${d.name}`));
      walk(d.id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

// a datetime-local value read as Beijing time, as ISO 8601 with its zone
const beijingIso = (value) => (value ? `${value.length === 16 ? `${value}:00` : value}+08:00` : "");

function renderForm() {
  const kind = h("select", { id: "cmd-name" }, COMMANDS.map((c) => h("option", { value: c.name }, c.label)));
  const targetKind = h("select", { id: "cmd-target-kind" }, TARGETS.map((t) => h("option", { value: t.kind }, t.label)));
  const one = h("select", { id: "cmd-agent" }, agentOptions());
  if (selected) one.value = selected;
  const site = h("select", { id: "cmd-target-site" },
    reference.sites.map((s) => h("option", { value: s.site_id }, `${s.name}（${s.site_id}）`)));
  const domain = h("select", { id: "cmd-target-category" },
    Object.entries(reference.domains).map(([k, v]) => h("option", { value: k }, v)));
  const department = h("select", { id: "cmd-target-department" }, departmentOptions());
  const tickedNote = h("p", { id: "cmd-ticked", class: "muted" });
  const file = h("input", { id: "cmd-file", type: "file", accept: ".toml,text/plain" });
  const text = h("textarea", { id: "cmd-text", rows: 10, spellcheck: "false", placeholder: "粘贴 TOML 内容，或选择文件上传" });
  const name = h("input", { id: "cmd-file-name", placeholder: "例如 gsp（不含 .toml）" });
  const lines = h("input", { id: "cmd-lines", type: "number", min: 1, max: 1000, value: 200 });
  const camera = h("input", { id: "cmd-camera", placeholder: "摄像头 ID" });
  const start = h("input", { id: "cmd-start", type: "datetime-local", step: 1 });
  const end = h("input", { id: "cmd-end", type: "datetime-local", step: 1 });
  const why = h("input", { id: "cmd-why", required: true, minlength: 2, maxlength: 500, placeholder: "必填，记入审计日志" });
  const rows = {
    one: field("代理", one),
    agents: h("div", { class: "field" }, tickedNote),
    site: field("场所", site),
    category: field("领域", domain),
    department: field("部门", department),
  };
  const textRow = field("内容（上传或粘贴）", h("div", {}, file, text));
  const nameRow = field("文件名", name);
  const linesRow = field("行数", lines);
  const cameraRow = field("摄像头", camera);
  const rangeRow = h("div", { class: "field" }, field("开始（北京时间）", start), field("结束（北京时间，至多 30 分钟）", end));
  const spec = () => COMMANDS.find((c) => c.name === kind.value);
  // .field is display:flex, which beats the hidden attribute: toggle display itself
  const toggle = (el, visible) => { el.hidden = !visible; el.style.display = visible ? "" : "none"; };
  const show = () => {
    const s = spec();
    toggle(textRow, !!s.text);
    toggle(nameRow, !!s.named);
    toggle(linesRow, s.name === "logs");
    toggle(cameraRow, !!s.camera);
    toggle(rangeRow, !!s.range);
    for (const [k, row] of Object.entries(rows)) toggle(row, k === targetKind.value);
    showTicked();
  };
  kind.addEventListener("change", show);
  targetKind.addEventListener("change", show);
  one.addEventListener("change", () => { selected = one.value; refreshCommands(); });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    text.value = await f.text();
    if (!name.value) name.value = f.name.replace(/\.toml$/i, "");
  });
  const target = () => {
    switch (targetKind.value) {
      case "agents": return ticked.size ? { agents: [...ticked].sort() } : null;
      case "site": return site.value ? { site_id: site.value } : null;
      case "category": return domain.value ? { category: domain.value } : null;
      case "department": return department.value ? { department_id: Number(department.value) } : null;
      default: return null;
    }
  };
  const submit = h("button", { type: "submit", class: "primary" }, "下发");
  const form = h("form", { id: "cmd-form", class: "stack" },
    h("h2", {}, "远程命令"),
    field("目标", targetKind), Object.values(rows),
    field("命令", kind), textRow, nameRow, linesRow, cameraRow, rangeRow, field("原因", why), submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const s = spec();
    const payload = {};
    if (s.text) {
      if (!text.value.trim()) return toast("请上传文件或粘贴内容", "error");
      payload[s.text] = text.value;
    }
    if (s.named) payload.name = name.value.trim();
    if (s.name === "logs") payload.lines = Number(lines.value);
    if (s.camera) payload.camera = camera.value.trim();
    if (s.range) {
      if (!start.value || !end.value) return toast("请填写导出的开始和结束时间", "error");
      payload.start = beijingIso(start.value);
      payload.end = beijingIso(end.value);
    }
    if (why.value.trim().length < 2) return toast("请填写原因", "error");
    const body = { name: s.name, payload, why: why.value.trim() };
    const group = targetKind.value !== "one";
    if (group && !target()) return toast(targetKind.value === "agents" ? "请先在上表勾选代理" : "请选择目标", "error");
    if (!group && !one.value) return toast("请选择代理", "error");
    submit.disabled = true;
    try {
      if (group) {
        const g = await api("fleet/groups", { method: "POST", json: { ...body, target: target() } });
        toast(`已创建批量命令：${g.name_label}，${g.target_label}，共 ${g.total} 台`);
        await refreshGroups();
      } else {
        selected = one.value;
        const row = await api(`fleet/agents/${selected}/commands`, { method: "POST", json: body });
        toast(`已创建命令：${row.name_label}（${row.state_label}）`);
        await refreshCommands();
      }
      why.value = "";
    } catch (ex) {
      toast(ex.message || "下发失败", "error");
    } finally {
      submit.disabled = false;
    }
  });
  show();
  clear(commandBox, form, h("h2", {}, "命令记录"), h("div", { id: "cmd-history" }, selected ? "正在加载……" : "在上表点「远程命令」或在目标中选择代理"));
}

// a snapshot / export's evidence: fetched with the token (the cloud has it once the agent's upload arrived)
function evidenceButton(ev) {
  const open = async () => {
    try {
      const url = await blobUrl(ev.url);
      const ext = ev.content_type === "video/webm" ? "webm" : "jpg";
      h("a", { href: url, download: `${ev.kind_label}-${ev.sha256.slice(0, 12)}.${ext}` }).click();
    } catch (ex) {
      toast(ex.status === 404 ? "证据尚未上传到云端，请稍后再试" : ex.message || "无法读取证据", "error");
    }
  };
  return h("button", { type: "button", class: "link", dataset: { evidence: ev.sha256 }, onclick: open },
    `查看${ev.kind_label}（${Math.max(1, Math.round(ev.size / 1024))} KB）`);
}

function resultCell(c) {
  return h("td", {},
    c.reason || "—",
    c.version_in_force ? h("div", { class: "muted" }, `生效版本 ${c.version_in_force}`) : null,
    (c.evidence || []).length ? h("div", {}, c.evidence.map(evidenceButton)) : null,
    c.output ? h("pre", { class: "cmd-output" }, c.output) : null);
}

function stateCell(c) {
  return h("td", { class: c.state === "done" ? "ok" : ["failed", "expired"].includes(c.state) ? "error" : "" }, c.state_label);
}

async function refreshCommands() {
  clearTimeout(openTimer);
  if (!selected) return;
  const box = document.getElementById("cmd-history");
  let rows;
  try {
    rows = await api(`fleet/agents/${selected}/commands`);
  } catch (ex) {
    if (box) clear(box, ex.message || "加载失败");
    return;
  }
  if (!box) return;
  clear(box, h("p", { class: "muted" }, `代理 ${selected}`), rows.length ? h("table", { class: "table", "aria-label": "命令记录" },
    h("thead", {}, h("tr", {}, ["时间", "命令", "内容", "原因", "下发人", "状态", "结果"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((c) => h("tr", { dataset: { command: c.id, state: c.state } },
      h("td", {}, fmtTime(c.issued_at)),
      h("td", {}, c.name_label),
      h("td", {}, c.payload_summary || "—"),
      h("td", {}, c.why),
      h("td", {}, c.created_by),
      stateCell(c),
      resultCell(c),
    )))) : "暂无命令");
  if (rows.some((c) => c.state === "pending" || c.state === "sent")) openTimer = setTimeout(refreshCommands, OPEN_REFRESH_MS);
}

function groupCard(g) {
  const why = h("input", { class: "group-cancel-why", placeholder: "取消原因（必填）", maxlength: 500 });
  const cancel = async () => {
    if (why.value.trim().length < 2) return toast("请填写取消原因", "error");
    try {
      const after = await api(`fleet/groups/${g.id}/cancel`, { method: "POST", json: { why: why.value.trim() } });
      toast(`已取消未执行的命令：${after.summary}`);
      await refreshGroups();
    } catch (ex) {
      toast(ex.message || "取消失败", "error");
    }
  };
  return h("article", { class: "card group", dataset: { group: g.id, finished: g.finished ? "yes" : "no" } },
    h("h3", {}, `${g.name_label}：${g.target_label}`),
    h("p", { class: "muted" }, `${fmtTime(g.created_at)}　${g.created_by}　原因：${g.why}`),
    h("p", { class: "group-summary" }, g.summary),
    h("ul", { class: "plain chips" }, g.state_counts.map((s) =>
      h("li", { dataset: { state: s.state } }, h("span", { class: "badge" }, `${s.label} ${s.count}`)))),
    h("table", { class: "table", "aria-label": "各代理结果" },
      h("thead", {}, h("tr", {}, ["代理", "状态", "结果"].map((t) => h("th", {}, t)))),
      h("tbody", {}, g.commands.map((c) => h("tr", { dataset: { agent: `${c.site_id}/${c.agent_id}`, state: c.state } },
        h("td", { title: `${c.site_id}/${c.agent_id}` }, agentName(c.site_id, c.agent_id)), stateCell(c), resultCell(c))))),
    g.finished ? null : h("div", { class: "row" }, why, h("button", { type: "button", onclick: cancel }, "取消未执行的命令")));
}

async function refreshGroups() {
  clearTimeout(groupTimer);
  if (!isAdmin()) return;
  let groups;
  try {
    groups = await api("fleet/groups");
  } catch (ex) {
    clear(groupBox, h("h2", {}, "批量命令进度"), ex.message || "加载失败");
    return;
  }
  clear(groupBox, h("h2", {}, "批量命令进度"), groups.length ? groups.map(groupCard) : h("p", { class: "muted" }, "暂无批量命令"));
  if (groups.some((g) => !g.finished)) groupTimer = setTimeout(refreshGroups, OPEN_REFRESH_MS);
}

async function refresh() {
  try {
    render(await api("fleet/agents"));
  } catch (ex) {
    toast(ex.message || "加载失败", "error");
  }
}

async function loadReference() {
  const [sites, departments, vocab] = await Promise.all([
    api("registry/sites").catch(() => []), api("registry/departments").catch(() => []), labels(),
  ]);
  reference = { sites, departments, domains: vocab.domains || {} };
}

me = await session(root, { title: "边缘设备一览", hint: "监管人员、审计员或管理员登录" });
clear(root, h("main", { class: "page" }, h("h1", {}, "边缘设备一览"), tableBox, commandBox, groupBox));
await refresh();
if (isAdmin()) {
  await loadReference();
  renderForm();
  await refreshGroups();
}
setInterval(refresh, REFRESH_MS);
