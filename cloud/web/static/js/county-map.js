// The county map (一张图) as one component, used by the map page (/map/) and the big screen (/screen/): the
// bureau's GeoJSON drawn by ECharts geo (offline), one marker per located site coloured by live state and shaped
// by domain, and, when geo.toml [map] tile_url is configured, a raster tile layer drawn under it.
//
// Tiles: the geo component uses a Web-Mercator projection, so an XYZ tile is an axis-aligned rectangle on screen;
// after every render the visible tiles of the zoom level nearest to the chart's scale are placed as <img> under the
// chart, at the pixels ECharts gives for their corners. The data (boundary and markers) comes in the tiles' datum
// (`county.display_crs`: WGS-84 for 天地图/OSM, GCJ-02 for 高德/腾讯, converted by the server), so markers sit on
// the right place of the tiles.
import { clear, h } from "./api.js";
import { chartNotice, loadCharts } from "./charts.js";

const TILE = 256;
const MAX_TILES = 160;

// Web Mercator (spherical), y pointing down as on screen; the unit is the radian of longitude.
const project = ([lon, lat]) => [(lon * Math.PI) / 180, -Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360))];
const unproject = ([x, y]) => [(x * 180) / Math.PI, (Math.atan(Math.exp(-y)) * 360) / Math.PI - 90];

/** Position of a marker in the datum the map is drawn in. */
export function displayPosition(county, m) {
  return county.display_crs === "gcj02" ? m.gcj02 : [m.longitude, m.latitude];
}

function tileUrl(tiles, x, y, z) {
  const subs = tiles.subdomains || "";
  const s = subs ? subs[Math.abs(x + y) % subs.length] : "";
  return tiles.url.replace("{s}", s).replace("{x}", String(x)).replace("{y}", String(y)).replace("{z}", String(z));
}

// Tiles under the chart: recomputed after each render (roam, resize, new data).
function tileLayer(layer, chart, county) {
  const tiles = county.tiles;
  const cache = new Map();
  let key = "";
  // two reference points in the display datum, far apart in both axes: the corners of the drawn boundary
  const pts = [];
  for (const f of county.geojson.features) {
    pts.push(...f.geometry.coordinates.flat(f.geometry.type === "Polygon" ? 1 : 2));
  }
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const ra = [Math.min(...xs), Math.min(...ys)];
  const rb = [Math.max(...xs), Math.max(...ys)];
  const redraw = () => {
    const pa = chart.convertToPixel({ geoIndex: 0 }, ra);
    const pb = chart.convertToPixel({ geoIndex: 0 }, rb);
    if (!pa || !pb) return;
    const qa = project(ra);
    const qb = project(rb);
    const sx = (pb[0] - pa[0]) / (qb[0] - qa[0]);
    const sy = (pb[1] - pa[1]) / (qb[1] - qa[1]);
    const toPx = ([x, y]) => [pa[0] + (x - qa[0]) * sx, pa[1] + (y - qa[1]) * sy];
    const fromPx = ([px, py]) => [qa[0] + (px - pa[0]) / sx, qa[1] + (py - pa[1]) / sy];
    // zoom whose tile size on screen is nearest to 256 px
    const z = Math.max(tiles.min_zoom, Math.min(tiles.max_zoom, Math.round(Math.log2((sx * 2 * Math.PI) / TILE))));
    const n2 = 2 ** z;
    const unit = (2 * Math.PI) / n2; // one tile in projected units
    const tileOf = ([x, y]) => [Math.floor((x + Math.PI) / unit), Math.floor((y + Math.PI) / unit)];
    const width = layer.clientWidth;
    const height = layer.clientHeight;
    const [x0, y0] = tileOf(fromPx([0, 0]));
    const [x1, y1] = tileOf(fromPx([width, height]));
    const wanted = [];
    for (let ty = Math.max(0, y0); ty <= Math.min(n2 - 1, y1); ty++) {
      for (let tx = Math.max(0, x0); tx <= Math.min(n2 - 1, x1); tx++) wanted.push([tx, ty]);
    }
    const view = `${z}|${pa.map(Math.round)}|${pb.map(Math.round)}|${width}x${height}`;
    if (view === key) return;
    key = view;
    const imgs = wanted.slice(0, MAX_TILES).map(([tx, ty]) => {
      const id = `${z}/${tx}/${ty}`;
      let img = cache.get(id);
      if (!img) {
        img = h("img", { alt: "", draggable: "false", dataset: { tile: id } });
        img.onerror = () => { img.dataset.failed = "1"; };
        img.src = tileUrl(tiles, tx, ty, z);
        cache.set(id, img);
      }
      const [left, top] = toPx([tx * unit - Math.PI, ty * unit - Math.PI]);
      const [right, bottom] = toPx([(tx + 1) * unit - Math.PI, (ty + 1) * unit - Math.PI]);
      img.style.cssText = `left:${Math.floor(left)}px;top:${Math.floor(top)}px;` +
        `width:${Math.ceil(right) - Math.floor(left)}px;height:${Math.ceil(bottom) - Math.floor(top)}px`;
      return img;
    });
    layer.replaceChildren(...imgs);
    layer.dataset.zoom = String(z);
    if (cache.size > 4 * MAX_TILES) cache.clear();
  };
  chart.on("finished", redraw);
  chart.on("georoam", () => requestAnimationFrame(redraw));
  return redraw;
}

/**
 * Mount the map into `container`. Returns `{ draw(markers), chart }`; `onSelect(siteId)` is called on a marker
 * click. Without a boundary or without ECharts a notice is shown (the caller's list still says everything).
 */
export async function countyMap(container, county, { dark = false, onSelect = () => {} } = {}) {
  const canvas = h("div", { class: "map-canvas", id: "map-canvas", role: "img", "aria-label": "辖区地图：场所按实时状态着色" });
  const tilesEl = county.tiles ? h("div", { class: "map-tiles", "aria-hidden": "true" }) : null;
  clear(container, h("div", { class: "map-stack" }, tilesEl, canvas),
    county.tiles && county.attribution ? h("div", { class: "map-attribution" }, county.attribution) : null,
    county.tile_notice ? h("p", { class: "map-note", role: "note" }, county.tile_notice) : null);
  const { echarts, hint } = await loadCharts();
  if (!county.geojson) {
    chartNotice(canvas, "未配置辖区边界（SENTINEL_COUNTY_BOUNDARY_FILE），地图不可用；列表仍显示各场所状态。");
    return { draw: () => {}, chart: null };
  }
  if (!echarts) {
    chartNotice(canvas, hint);
    return { draw: () => {}, chart: null };
  }
  const townships = county.geojson.features.filter((f) => f.properties.level === "township");
  const whole = county.geojson.features.filter((f) => f.properties.level === "county");
  echarts.registerMap("county", { type: "FeatureCollection", features: townships.length ? townships : whole });
  const chart = echarts.init(canvas, null, { renderer: "svg" });
  chart.on("click", (p) => { if (p.data && p.data.site) onSelect(p.data.site.site_id); });
  new ResizeObserver(() => chart.resize()).observe(canvas);
  const symbol = (d) => county.domain_symbols[d] || county.domain_symbols.other || "circle";
  const overTiles = Boolean(county.tiles);
  const area = overTiles ? "rgba(255,255,255,0.08)" : dark ? "#0d2038" : "#f3f6fa";
  chart.setOption({
    backgroundColor: "transparent", animation: false,
    tooltip: { trigger: "item", formatter: (p) => (p.data && p.data.site ? `${p.data.site.name}<br>${p.data.site.state_label}｜${p.data.site.domain_label}` : p.name) },
    geo: { map: "county", roam: true, projection: { project, unproject },
      label: { show: true, color: dark ? "#8fb3de" : "#57606a" },
      itemStyle: { areaColor: area, borderColor: dark ? "#2f5b8a" : "#57606a", borderWidth: overTiles ? 1.5 : 1 },
      emphasis: { label: { show: true }, itemStyle: { areaColor: overTiles ? "rgba(255,255,255,0.2)" : dark ? "#12294a" : "#e6eef8" } } },
    series: [],
  });
  const redrawTiles = tilesEl ? tileLayer(tilesEl, chart, county) : () => {};
  const draw = (markers) => {
    chart.setOption({
      series: [{
        type: "scatter", coordinateSystem: "geo", name: "场所", symbolSize: 16,
        data: markers.map((m) => ({ name: m.name, value: displayPosition(county, m), symbol: symbol(m.domain),
          itemStyle: { color: m.colour, borderColor: "#ffffff", borderWidth: 1 }, site: m })),
      }],
    }, { replaceMerge: ["series"] });
    canvas.dataset.markers = String(markers.length);
    redrawTiles();
  };
  return { draw, chart };
}
