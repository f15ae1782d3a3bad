// Big screen (dark; laid out for 1920×1080 and 1440×900): the county map (county-map.js) in the centre with live
// marker state, live counts by domain, live alert feed over SSE in people's words (site · device, Chinese
// message), sites online/offline, 24 h trend, clues by domain, deadline warnings. Refreshes without reload: SSE
// events + a periodic poll. Lists are cut to what fits their panel (nothing clipped, nothing overflowing).
import { api, clear, daysLeftText, fmtClock, fmtDue, h, label, labels, liveFeed, session } from "./api.js";
import { chartNotice, loadCharts } from "./charts.js";
import { countyMap } from "./county-map.js";

const root = document.getElementById("root");
const DOMAIN_ORDER = ["drug", "food", "special_equipment"];
let L = null;
let trendChart = null;
let sitesChart = null;
const feed = [];
let lastOverview = null;
let map = null;

// Drop trailing items of `list` until its panel shows all that is left (the panel does not scroll).
function fit(list, items) {
  const panel = list.closest(".panel");
  while (items.length && panel.scrollHeight > panel.clientHeight + 1) items.pop().remove();
}

function layout() {
  const panels = DOMAIN_ORDER.map((d) => h("section", { class: `panel ${d}`, style: `grid-area:${d}`, "aria-label": `${L.domains[d]}领域` },
    h("h2", {}, `${L.domains[d]}安全`),
    h("div", { class: "stat" }, h("span", { class: "big", id: `count-${d}` }, "—"), h("span", { class: "sub" }, "在办告警")),
    h("div", { class: "sub", id: `sub-${d}` }, "")));
  clear(root, h("div", { class: "screen-grid" },
    h("header", {}, h("h1", {}, "市场监管数字化监管态势"),
      h("div", { class: "clock" }, h("span", { class: "live-dot", id: "live-dot", "aria-hidden": "true" }), h("span", { id: "live-state" }, "实时：连接中"), "　",
        h("span", { id: "clock", "aria-live": "off" }, ""))),
    panels,
    h("section", { class: "panel screen-map", "aria-label": "辖区一张图" }, h("h2", { id: "map-title" }, "辖区一张图"),
      h("div", { class: "map-legend", id: "map-legend" }), h("div", { class: "map-main", id: "screen-map" })),
    h("section", { class: "panel", style: "grid-area:sites", "aria-label": "场所在线" }, h("h2", {}, "监测场所"),
      h("div", { class: "stat" }, h("span", { class: "big", id: "sites-online", style: "color:#32d583" }, "—"), h("span", { class: "sub" }, "在线"),
        h("span", { class: "big", id: "sites-offline", style: "color:#ff6b6b" }, "—"), h("span", { class: "sub" }, "离线")),
      h("div", { class: "sub" }, "在办线索 ", h("span", { id: "open-clues" }, "—"))),
    h("section", { class: "panel", style: "grid-area:trend", "aria-label": "24 小时告警趋势" }, h("h2", {}, "24 小时告警趋势"), h("div", { class: "chart", id: "trend" })),
    h("section", { class: "panel", style: "grid-area:feed", "aria-label": "实时告警" }, h("h2", {}, "实时告警"), h("ul", { class: "feed", id: "feed", "aria-live": "polite" })),
    h("section", { class: "panel", style: "grid-area:pie", "aria-label": "各领域线索" }, h("h2", {}, "各领域线索"), h("div", { class: "chart", id: "sites-chart" })),
    h("section", { class: "panel", style: "grid-area:warn", "aria-label": "期限预警" }, h("h2", {}, "期限预警（即将到期与超期）"), h("div", { id: "warnings" })),
  ));
}

function renderFeed() {
  const ul = document.getElementById("feed");
  const items = feed.slice(0, 14).map((a) => h("li", { class: a.fresh ? "fresh" : "", dataset: { alertId: a.id } },
    h("span", { class: "t" }, fmtClock(a.ts)),
    h("span", {}, h("span", { class: `badge sev-${a.severity}` }, label(L.severities, a.severity)), " ",
      h("span", { class: "place" }, a.place || "未登记场所"), `｜${a.message}${a.cleared ? "（已解除）" : ""}`)));
  clear(ul, items);
  fit(ul, items);
  for (const a of feed) a.fresh = false;
}

async function refresh() {
  const o = await api("console/overview");
  lastOverview = o;
  for (const d of DOMAIN_ORDER) {
    const c = o.domains[d];
    document.getElementById(`count-${d}`).textContent = String(c.open_alerts);
    document.getElementById(`sub-${d}`).textContent = `在办线索 ${c.open_clues}　监测场所 ${c.sites}`;
  }
  document.getElementById("sites-online").textContent = String(o.sites.online);
  document.getElementById("sites-offline").textContent = String(o.sites.offline);
  document.getElementById("open-clues").textContent = String(o.open_clues);
  if (!feed.length && o.recent_alerts.length) {
    for (const a of o.recent_alerts) feed.push({ id: a.id, ts: a.started_at, severity: a.severity, domain: a.domain, place: a.place, message: a.message, cleared: a.status !== "open" });
  }
  renderFeed();
  const rows = o.deadline_warnings.slice(0, 8).map((w) => h("tr", {}, h("td", {}, w.title), h("td", {}, w.deadline), h("td", {}, fmtDue(w.due, w.certainty)),
    h("td", {}, h("span", { class: `badge st-${w.status}` }, daysLeftText(w.remaining_working_days)))));
  const box = document.getElementById("warnings");
  clear(box, rows.length
    ? h("table", {}, h("thead", {}, h("tr", {}, ["事项", "期限", "到期日", "剩余"].map((t) => h("th", {}, t)))), h("tbody", {}, rows))
    : h("p", { class: "sub" }, "暂无即将到期或超期事项"));
  fit(box, rows);
  await Promise.all([drawCharts(o), drawMap()]);
  root.dataset.ready = "1";
}

async function drawMap() {
  const data = await api("map/sites");
  map?.draw(data.markers);
  const online = data.markers.filter((m) => m.state === "normal").length;
  document.getElementById("map-title").textContent = `辖区一张图（场所 ${data.markers.length}，告警 ${data.markers.filter((m) => m.state === "alert").length}，离线 ${data.markers.filter((m) => m.state === "offline").length}，正常 ${online}）`;
}

async function startMap() {
  const county = await api("map/county");
  const legend = document.getElementById("map-legend");
  clear(legend, Object.entries(county.state_labels).map(([k, v]) => h("span", {}, h("span", { class: "swatch", style: `background:${county.colours[k]}` }), v)));
  map = await countyMap(document.getElementById("screen-map"), county, {
    dark: true, onSelect: (siteId) => { window.open(`/map/?site=${encodeURIComponent(siteId)}`, "_blank"); } });
  window.__sentinelMap = map.chart; // tests read the option back
}

async function drawCharts(o) {
  const { echarts, hint } = await loadCharts();
  const trendBox = document.getElementById("trend");
  const sitesBox = document.getElementById("sites-chart");
  if (!echarts) {
    chartNotice(trendBox, hint);
    clear(sitesBox, h("ul", {}, DOMAIN_ORDER.map((d) => h("li", {}, `${L.domains[d]}：${o.domains[d].open_clues}`))));
    return;
  }
  // SVG: text boxes can be measured (tests check that no label is cut off at 1440 and 1920 px)
  trendChart ??= echarts.init(trendBox, "dark", { renderer: "svg" });
  sitesChart ??= echarts.init(sitesBox, "dark", { renderer: "svg" });
  const colors = { drug: "#5cc8ff", food: "#7ee2a8", special_equipment: "#ffc857" };
  trendChart.setOption({
    backgroundColor: "transparent", animation: false, textStyle: { fontSize: 14 },
    legend: { top: 0, textStyle: { color: "#d7e3f4", fontSize: 15 } }, tooltip: { trigger: "axis" },
    grid: { left: 8, right: 16, top: 36, bottom: 4, containLabel: true },
    xAxis: { type: "category", data: o.trend.hours, axisLabel: { color: "#8fb3de" } },
    yAxis: { type: "value", minInterval: 1, axisLabel: { color: "#8fb3de" }, splitLine: { lineStyle: { color: "#17304d" } } },
    series: DOMAIN_ORDER.map((d) => ({ name: o.trend.series[d].label, type: "line", smooth: true, data: o.trend.series[d].data, color: colors[d], areaStyle: { opacity: 0.12 } })),
  });
  sitesChart.setOption({
    backgroundColor: "transparent", animation: false, tooltip: {},
    series: [{ type: "pie", stillShowZeroSum: false, radius: ["38%", "60%"], center: ["50%", "52%"],
      label: { color: "#d7e3f4", fontSize: 15, formatter: "{b} {c}" }, labelLine: { length: 8, length2: 8 },
      data: DOMAIN_ORDER.map((d) => ({ name: L.domains[d], value: o.domains[d].open_clues, itemStyle: { color: colors[d] } })) }],
  });
  trendBox.dataset.ready = "1";
}

async function start() {
  await session(root, { title: "市场监管态势大屏", hint: "请使用监管账号登录（大屏登录后自动保持）" });
  L = await labels();
  layout();
  await startMap();
  const tick = () => { document.getElementById("clock").textContent = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", dateStyle: "long", timeStyle: "medium" }).format(new Date()); };
  tick();
  setInterval(tick, 1000);
  await refresh();
  let pending = null;
  const soon = () => { pending ??= setTimeout(() => { pending = null; refresh().catch(() => {}); }, 500); };
  liveFeed((ev) => {
    if (ev.type === "alert") {
      const p = ev.payload;
      feed.unshift({ id: p.alert_id, ts: ev.ts, severity: p.severity, domain: p.domain, place: p.place, message: p.message, cleared: ev.action === "alert.cleared", fresh: true });
      feed.length = Math.min(feed.length, 50);
      renderFeed();
    }
    soon();
  }, (on) => {
    document.getElementById("live-dot").classList.toggle("on", on);
    document.getElementById("live-state").textContent = on ? "实时：已连接" : "实时：重连中";
  }, lastOverview?.journal_id);
  setInterval(() => refresh().catch(() => {}), 30000);
  addEventListener("resize", () => { trendChart?.resize(); sitesChart?.resize(); renderFeed(); });
}

start();
