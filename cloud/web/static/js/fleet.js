// Fleet view (边缘设备一览): every edge agent with online state, last seen, versions, outbox, clock, CPU/memory and
// its open alerts (an offline agent's alerts are "状态未知"). Data: GET /api/v1/fleet/agents, refreshed every 15 s.
import { api, clear, fmtTime, h, session, toast } from "./api.js";

const root = document.getElementById("root");
const REFRESH_MS = 15000;

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

function render(agents) {
  const online = agents.filter((a) => a.online).length;
  clear(root, h("main", { class: "page" },
    h("h1", {}, "边缘设备一览"),
    h("p", { class: "muted", id: "fleet-summary" }, `共 ${agents.length} 台，在线 ${online}，离线 ${agents.length - online}`),
    h("table", { class: "table", "aria-label": "边缘设备" },
      h("thead", {}, h("tr", {}, ["场所", "代理", "状态", "最后联系", "软件版本", "配置版本（上报）", "缓存深度", "时钟偏差", "CPU", "内存", "未结告警"].map((t) => h("th", {}, t)))),
      h("tbody", {}, agents.map((a) => h("tr", { dataset: { agent: `${a.site_id}/${a.agent_id}` } },
        h("td", {}, a.site_id),
        h("td", { title: a.incarnation ? `实例 ${a.incarnation}` : "" }, a.agent_id),
        h("td", { class: a.online ? "ok" : "error" }, a.online_label),
        h("td", { title: fmtTime(a.last_seen_at) }, silentText(a.silent_s)),
        h("td", {}, a.agent_version || "—"),
        h("td", {}, a.config_version_reported || "—"),
        h("td", {}, a.outbox_depth == null ? "—" : String(a.outbox_depth)),
        clockCell(a),
        h("td", {}, num(a.cpu_percent, 1, "%")),
        h("td", {}, num(a.rss_mb, 0, " MB")),
        alertsCell(a),
      ))),
    ),
  ));
}

async function refresh() {
  try {
    render(await api("fleet/agents"));
  } catch (ex) {
    toast(ex.message || "加载失败", "error");
  }
}

await session(root, { title: "边缘设备一览", hint: "监管人员、审计员或管理员登录" });
await refresh();
setInterval(refresh, REFRESH_MS);
