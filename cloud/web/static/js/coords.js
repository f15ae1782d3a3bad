// Coordinates of a subject or a site, shown and edited the same way on every page (map page, subject page,
// registry admin pages): stored in WGS-84; input in WGS-84 (GPS) or GCJ-02 (read off 高德/腾讯 maps, converted by
// the server). The server validates (both or neither, not 0,0, inside the county boundary) and its Chinese reason
// is shown under the form; obvious slips (empty, not a number, out of range) are caught here first.
import { api, h, toast } from "./api.js";

const SYSTEMS = [["wgs84", "WGS-84（GPS、天地图）"], ["gcj02", "GCJ-02（高德、腾讯地图上读取）"]];

function check(lon, lat) {
  if (lon === "" && lat === "") return "请填写经度和纬度";
  if (lon === "" || lat === "") return "经度和纬度须同时填写";
  const x = Number(lon);
  const y = Number(lat);
  if (!Number.isFinite(x) || !Number.isFinite(y)) return "经度、纬度须为数字（十进制度，例如 120.6290）";
  if (x < -180 || x > 180) return "经度须在 -180 至 180 之间";
  if (y < -90 || y > 90) return "纬度须在 -90 至 90 之间";
  if (x === 0 && y === 0) return "坐标 0,0 无效（未定位）";
  return null;
}

/** Text for a stored position: 经度 120.629000，纬度 31.318000（WGS-84）, or 未标注坐标. */
export function positionText(record) {
  return record && record.longitude != null && record.latitude != null
    ? `经度 ${Number(record.longitude).toFixed(6)}，纬度 ${Number(record.latitude).toFixed(6)}（WGS-84）`
    : "未标注坐标";
}

/**
 * A form that shows and edits one record's position. `path`: the registry resource to PATCH
 * (`registry/sites/<id>` or `registry/subjects/<id>`); `record`: its current values; `onSaved(updated)` after a
 * save. The form is labelled `label` (its accessible name).
 */
export function coordinatesForm({ path, record, onSaved = () => {}, label = "设置坐标" }) {
  const stored = h("p", { class: "coords-stored" }, `当前：${positionText(record)}`);
  const lon = h("input", { name: "longitude", inputmode: "decimal", autocomplete: "off", value: record?.longitude != null ? String(record.longitude) : "" });
  const lat = h("input", { name: "latitude", inputmode: "decimal", autocomplete: "off", value: record?.latitude != null ? String(record.latitude) : "" });
  const crs = h("select", { name: "coord_system" }, SYSTEMS.map(([v, t]) => h("option", { value: v }, t)));
  const msg = h("p", { class: "error", role: "alert" });
  const save = async (e) => {
    e.preventDefault();
    msg.textContent = "";
    const problem = check(lon.value.trim(), lat.value.trim());
    if (problem) {
      msg.textContent = problem;
      return;
    }
    try {
      const updated = await api(path, { method: "PATCH",
        json: { longitude: Number(lon.value), latitude: Number(lat.value), coord_system: crs.value } });
      stored.textContent = `当前：${positionText(updated)}`;
      lon.value = String(updated.longitude);
      lat.value = String(updated.latitude);
      crs.value = "wgs84"; // the fields now hold the stored WGS-84 values
      toast("坐标已保存");
      await onSaved(updated);
    } catch (err) {
      msg.textContent = err.message;
    }
  };
  return h("form", { class: "coords", "aria-label": label, onsubmit: save },
    h("h3", {}, label), stored,
    h("div", { class: "coords-fields" }, h("label", {}, "经度", lon), h("label", {}, "纬度", lat), h("label", {}, "坐标系", crs)),
    h("button", { type: "submit" }, "保存坐标"), msg);
}

/**
 * The positions of a market subject and of its sites (subject page): each shown in WGS-84, with the form when the
 * user may edit the registry, and a link to the site on the county map.
 */
export async function positionsCard(subject, editable) {
  const sites = await api(`registry/sites?subject_id=${subject.id}`).catch(() => []);
  const one = (title, path, record, extra) => h("div", { class: "coords-entry", dataset: { path } },
    h("h3", {}, title, extra), editable
      ? coordinatesForm({ path, record, label: `${title}坐标` })
      : h("p", { class: "coords-stored" }, positionText(record)));
  return h("section", { class: "card", "aria-labelledby": "h-positions" }, h("h2", { id: "h-positions" }, `${subject.name} · 位置`),
    one("市场主体（住所）", `registry/subjects/${subject.id}`, subject),
    sites.map((s) => one(`场所：${s.name}`, `registry/sites/${encodeURIComponent(s.site_id)}`, s,
      h("a", { href: `/map/?site=${encodeURIComponent(s.site_id)}`, class: "coords-map" }, "　在一张图中查看"))),
    sites.length ? null : h("p", { class: "muted" }, "该主体名下尚无登记场所"));
}
