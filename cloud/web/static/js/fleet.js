// Fleet view (边缘设备一览): every edge agent with online state, last seen, versions, outbox, clock, CPU/memory and
// its open alerts (an offline agent's alerts are "状态未知"). Data: GET /api/v1/fleet/agents, refreshed every 15 s.
// An administrator also gets the remote commands (issue 15): pick an agent, then push a site configuration, rule pack
// or register map (uploaded or pasted, with a reason), ping, reload, fetch its last log lines or a camera snapshot;
// the agent's commands are listed with their state and result (refreshed every 3 s while one is open).
import { api, blobUrl, clear, fmtTime, h, session, toast } from "./api.js";

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
  { name: "snapshot", label: "抓拍画面" },
];

let me = null;
let selected = null; // "site/agent"
let openTimer = null;
const tableBox = h("div", { id: "fleet-table" });
const commandBox = h("section", { id: "fleet-commands", "aria-label": "远程命令" });

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

function render(agents) {
  const online = agents.filter((a) => a.online).length;
  const headers = ["场所", "代理", "状态", "最后联系", "软件版本", "版本（上报 / 期望）", "缓存深度", "时钟偏差", "CPU", "内存", "未结告警"];
  if (isAdmin()) headers.push("操作");
  clear(tableBox,
    h("p", { class: "muted", id: "fleet-summary" }, `共 ${agents.length} 台，在线 ${online}，离线 ${agents.length - online}`),
    h("table", { class: "table", "aria-label": "边缘设备" },
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
      h("tbody", {}, agents.map((a) => {
        const key = `${a.site_id}/${a.agent_id}`;
        return h("tr", { dataset: { agent: key }, class: key === selected ? "selected" : "" },
          h("td", {}, a.site_id),
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
}

function select(key) {
  selected = key;
  renderForm();
  refreshCommands();
  document.querySelectorAll("tr[data-agent]").forEach((tr) => tr.classList.toggle("selected", tr.dataset.agent === key));
}

function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

function renderForm() {
  const kind = h("select", { id: "cmd-name" }, COMMANDS.map((c) => h("option", { value: c.name }, c.label)));
  const file = h("input", { id: "cmd-file", type: "file", accept: ".toml,text/plain" });
  const text = h("textarea", { id: "cmd-text", rows: 10, spellcheck: "false", placeholder: "粘贴 TOML 内容，或选择文件上传" });
  const name = h("input", { id: "cmd-file-name", placeholder: "例如 gsp（不含 .toml）" });
  const lines = h("input", { id: "cmd-lines", type: "number", min: 1, max: 1000, value: 200 });
  const camera = h("input", { id: "cmd-camera", placeholder: "摄像头 ID" });
  const why = h("input", { id: "cmd-why", required: true, minlength: 2, maxlength: 500, placeholder: "必填，记入审计日志" });
  const textRow = field("内容（上传或粘贴）", h("div", {}, file, text));
  const nameRow = field("文件名", name);
  const linesRow = field("行数", lines);
  const cameraRow = field("摄像头", camera);
  const spec = () => COMMANDS.find((c) => c.name === kind.value);
  const show = () => {
    const s = spec();
    textRow.hidden = !s.text;
    nameRow.hidden = !s.named;
    linesRow.hidden = s.name !== "logs";
    cameraRow.hidden = s.name !== "snapshot";
  };
  kind.addEventListener("change", show);
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    text.value = await f.text();
    if (!name.value) name.value = f.name.replace(/\.toml$/i, "");
  });
  const submit = h("button", { type: "submit", class: "primary" }, "下发");
  const form = h("form", { id: "cmd-form", class: "stack" },
    h("h2", {}, `远程命令：${selected}`),
    field("命令", kind), textRow, nameRow, linesRow, cameraRow, field("原因", why), submit);
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
    if (s.name === "snapshot") payload.camera = camera.value.trim();
    if (why.value.trim().length < 2) return toast("请填写原因", "error");
    submit.disabled = true;
    try {
      const row = await api(`fleet/agents/${selected}/commands`, { method: "POST", json: { name: s.name, payload, why: why.value.trim() } });
      toast(`已创建命令：${row.name_label}（${row.state_label}）`);
      why.value = "";
      await refreshCommands();
    } catch (ex) {
      toast(ex.message || "下发失败", "error");
    } finally {
      submit.disabled = false;
    }
  });
  show();
  clear(commandBox, form, h("h2", {}, "命令记录"), h("div", { id: "cmd-history" }, "正在加载……"));
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
  clear(box, rows.length ? h("table", { class: "table", "aria-label": "命令记录" },
    h("thead", {}, h("tr", {}, ["时间", "命令", "内容", "原因", "下发人", "状态", "结果"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((c) => h("tr", { dataset: { command: c.id, state: c.state } },
      h("td", {}, fmtTime(c.issued_at)),
      h("td", {}, c.name_label),
      h("td", {}, c.payload_summary || "—"),
      h("td", {}, c.why),
      h("td", {}, c.created_by),
      h("td", { class: c.state === "done" ? "ok" : ["failed", "expired"].includes(c.state) ? "error" : "" }, c.state_label),
      resultCell(c),
    )))) : "暂无命令");
  if (rows.some((c) => c.state === "pending" || c.state === "sent")) openTimer = setTimeout(refreshCommands, OPEN_REFRESH_MS);
}

async function refresh() {
  try {
    render(await api("fleet/agents"));
  } catch (ex) {
    toast(ex.message || "加载失败", "error");
  }
}

me = await session(root, { title: "边缘设备一览", hint: "监管人员、审计员或管理员登录" });
clear(root, h("main", { class: "page" }, h("h1", {}, "边缘设备一览"), tableBox, commandBox));
await refresh();
setInterval(refresh, REFRESH_MS);
