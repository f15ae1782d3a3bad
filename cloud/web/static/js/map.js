// County map (一张图): the bureau's boundary and townships drawn from its GeoJSON with ECharts geo (no tile
// server, no internet), one marker per located site coloured by live state (normal / alert / offline) and shaped
// by domain; filters (domain, risk grade, open clues); a click opens the site with its open clues (links into
// the console). The list beside the map is the same data as text (and the fallback without charts).
// Page /map/ (the same map is the centre of the big screen /screen/: county-map.js). Data: GET /api/v1/map/county,
// /map/sites.
import { api, clear, h, liveFeed, session } from "./api.js";
import { coordinatesForm } from "./coords.js";
import { countyMap } from "./county-map.js";

const state = { county: null, markers: [], unlocated: [], selected: null, filters: { domain: "", risk_grade: "", open_clues: false } };
let map = null;
let me = null;
let rootEl = null;

function query() {
  const q = new URLSearchParams();
  if (state.filters.domain) q.set("domain", state.filters.domain);
  if (state.filters.risk_grade) q.set("risk_grade", state.filters.risk_grade);
  if (state.filters.open_clues) q.set("open_clues", "true");
  return q.toString() ? `?${q}` : "";
}

function legend() {
  const c = state.county;
  return h("div", { class: "map-legend", "aria-label": "图例" },
    Object.entries(c.state_labels).map(([k, v]) => h("span", {}, h("span", { class: "swatch", style: `background:${c.colours[k]}` }), v)));
}

function filters(root) {
  const c = state.county;
  const sel = (name, title, options) => h("label", {}, title,
    h("select", { name, onchange: (e) => { state.filters[name] = e.target.value; refresh(root).catch(() => {}); } },
      h("option", { value: "" }, "全部"), options.map(([v, t]) => h("option", { value: v }, t))));
  return [
    sel("domain", "领域", [...Object.entries(c.domains), ["other", "其他"]]),
    sel("risk_grade", "风险等级", ["A", "B", "C", "D"].map((g) => [g, `${g} 级`])),
    h("label", {}, h("input", { type: "checkbox", name: "open_clues", onchange: (e) => { state.filters.open_clues = e.target.checked; refresh(root).catch(() => {}); } }), "仅显示有在办线索"),
  ];
}

// Setting a site's position from the map page (supervisors): the one coordinates form (coords.js).
function positionForm(siteId, m) {
  if (!me || !["admin", "supervisor"].includes(me.role)) return null;
  return coordinatesForm({ path: `registry/sites/${encodeURIComponent(siteId)}`, record: m, label: "设置场所坐标",
    onSaved: () => refresh(rootEl) });
}

function siteDetail(m) {
  return h("section", { class: "map-detail", "aria-label": "场所详情", "data-site-id": m.site_id },
    h("h2", {}, m.name),
    h("p", {}, h("span", { class: "swatch", style: `background:${m.colour}` }), `${m.state_label}｜${m.domain_label}｜风险等级 ${m.risk_grade ?? "—"}`),
    h("p", { class: "map-note" }, `${m.address ?? ""}${m.township ? `（${m.township}）` : ""}`),
    m.subject_name ? h("p", {}, `经营主体：${m.subject_name}`) : null,
    h("p", {}, `在办告警 ${m.open_alerts}，在办线索 ${m.open_clues}`),
    m.clues.length ? h("ul", {}, m.clues.map((c) => h("li", {}, h("a", { href: `/#/clue/${c.id}` }, c.title)))) : null,
    positionForm(m.site_id, m));
}

function renderSide() {
  const side = document.getElementById("map-side");
  const items = state.markers.map((m) => h("li", {
    class: state.selected === m.site_id ? "selected" : "", tabindex: "0",
    dataset: { siteId: m.site_id, state: m.state, colour: m.colour },
    onclick: () => select(m.site_id), onkeydown: (e) => { if (e.key === "Enter") select(m.site_id); },
  }, h("span", { class: "swatch", style: `background:${m.colour}` }), `${m.name}　${m.state_label}`,
    m.open_clues ? `　线索 ${m.open_clues}` : ""));
  const chosen = state.markers.find((m) => m.site_id === state.selected);
  const unlocated = !chosen && state.unlocated.includes(state.selected) ? state.selected : null;
  clear(side,
    chosen ? siteDetail(chosen) : null,
    unlocated ? h("section", { class: "map-detail", "data-site-id": unlocated }, h("h2", {}, `${unlocated}（未标注坐标）`), positionForm(unlocated, null)) : null,
    h("h2", {}, `场所（${state.markers.length}）`),
    h("ul", { class: "map-sites" }, items),
    state.unlocated.length ? h("div", { class: "map-note" }, "未标注坐标的场所：",
      h("ul", { class: "map-unlocated" }, state.unlocated.map((id) => h("li", { tabindex: "0", dataset: { siteId: id },
        onclick: () => select(id), onkeydown: (e) => { if (e.key === "Enter") select(id); } }, id)))) : null);
}

function select(siteId) {
  state.selected = siteId;
  renderSide();
}

function draw() {
  map?.draw(state.markers);
}

async function refresh(root) {
  const data = await api(`map/sites${query()}`);
  state.markers = data.markers;
  state.unlocated = data.unlocated;
  if (state.selected && !state.markers.some((m) => m.site_id === state.selected)) state.selected = null;
  renderSide();
  draw();
  root.dataset.ready = "1";
}

async function start() {
  const root = document.getElementById("map-root");
  rootEl = root;
  me = await session(root, { title: "辖区一张图", hint: "请使用监管账号登录" });
  state.county = await api("map/county");
  const c = state.county;
  clear(root, h("div", { class: "map-layout" },
    h("header", {}, h("h1", {}, c.name ? `${c.name}一张图` : "辖区一张图"), filters(root), legend(),
      h("a", { href: "/" }, "返回控制台")),
    h("div", { class: "map-main", id: "map-main" }),
    h("aside", { class: "map-side", id: "map-side" })));
  map = await countyMap(document.getElementById("map-main"), c, { onSelect: select });
  window.__sentinelMap = map.chart; // tests read the option back
  const wanted = new URLSearchParams(location.search).get("site"); // from the big screen's map
  if (wanted) state.selected = wanted;
  await refresh(root);
  let pending = null;
  liveFeed(() => { pending ??= setTimeout(() => { pending = null; refresh(root).catch(() => {}); }, 1000); });
  setInterval(() => refresh(root).catch(() => {}), 30000);
}

start();
