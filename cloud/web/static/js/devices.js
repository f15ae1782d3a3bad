// 待审批设备 / 隔离数据 (#13): devices an edge agent announced, or that the ingest opened for data nobody announced,
// waiting for approval, with the readings and alarms the cloud holds for them (nothing of it is in the records or
// becomes a clue until approval). Data: GET /registry/pending?state=, GET /registry/quarantine?pending_id=,
// GET /registry/sites for the site names. A supervisor or administrator (the roles the approve/reject routes accept)
// approves -- the held data is replayed in order -- or rejects with a note -- it becomes dead letters with the
// reason; every other role sees the lists only. Every code is shown through the one vocabulary (labels.toml).
import { api, clear, fmtTime, h, toast } from "./api.js";

const DECIDERS = new Set(["admin", "supervisor"]);
const STATES = ["pending", "approved", "rejected"];
let stateFilter = "pending";

const text = (map, code, otherwise) => (map && map[code]) || otherwise;

function table(aria, id, headings, rows, empty) {
  return h("table", { id, "aria-label": aria },
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: String(headings.length), class: "muted" }, empty))));
}

function reasonText(L, p) {
  return text(L.quarantine_reasons, p.reason || "announced", p.reason_label || "待审批");
}

function deviceText(L, p) {
  const kind = text(L.device_types, p.device_type, "其他设备");
  const model = p.model ? `（型号 ${p.model}）` : "";
  return `${kind}${model}${p.device_known ? "：已登记设备的新传感器" : ""}`;
}

/** #/devices[/<pending id>] */
export async function devicesPage(main, id, { L, me }) {
  const decides = DECIDERS.has(me.role);
  const [pending, sites] = await Promise.all([
    api(`registry/pending?state=${stateFilter}`),
    api("registry/sites").catch(() => []),
  ]);
  const siteName = Object.fromEntries(sites.map((s) => [s.site_id, s.name]));
  const selected = id ? pending.find((p) => String(p.id) === String(id)) : null;
  const result = h("section", { id: "pending-result", class: "card", "aria-live": "polite", hidden: true });
  const filter = h("select", { id: "pending-state", onchange: (e) => { stateFilter = e.target.value; devicesPage(main, null, { L, me }); } },
    STATES.map((s) => h("option", { value: s, selected: s === stateFilter }, text(L.approval_states, s, "其他"))));
  const headings = ["场所", "设备", "传感器", "原因", "隔离数据", "首次上报", "最近上报", "状态", ""];
  const rows = pending.map((p) => h("tr", { dataset: { pending: p.id }, class: selected && selected.id === p.id ? "selected" : "" },
    h("td", { title: p.site_id }, siteName[p.site_id] || "未登记的场所"),
    h("td", { title: p.device_id }, deviceText(L, p)),
    h("td", { title: p.sensors.join("、") }, `${p.sensors.length} 个`),
    h("td", { class: "pending-reason" }, reasonText(L, p)),
    h("td", { class: "pending-held" }, `${p.quarantined} 条`),
    h("td", {}, fmtTime(p.first_seen)),
    h("td", {}, fmtTime(p.last_seen)),
    h("td", {}, text(L.approval_states, p.state, "其他"), p.decided_at ? h("div", { class: "muted" }, fmtTime(p.decided_at)) : null,
      p.note ? h("div", { class: "muted" }, `意见：${p.note}`) : null),
    h("td", {}, h("a", { href: `#/devices/${p.id}` }, "查看隔离数据")),
  ));
  clear(main,
    h("h1", {}, "待审批设备与隔离数据"),
    h("p", { class: "muted" }, "未批准设备的读数和告警保存在隔离区，不入库、不生成线索；批准后按原顺序补入，拒绝后转为死信并注明原因。"),
    h("div", { class: "filters row" }, h("div", {}, h("label", { for: "pending-state" }, "审批状态"), filter)),
    result,
    table("待审批设备", "pending-table", headings, rows, stateFilter === "pending" ? "暂无待审批设备" : "暂无记录"),
    selected ? await heldSection(L, selected, siteName, decides, result, main, me) : null,
  );
}

async function heldSection(L, p, siteName, decides, result, main, me) {
  const held = await api(`registry/quarantine?pending_id=${p.id}&limit=1000`);
  const where = `${siteName[p.site_id] || "未登记的场所"} · ${deviceText(L, p)}`;
  const section = h("section", { class: "card", id: "held", "aria-label": "隔离数据" },
    h("h2", {}, `隔离数据：${where}`),
    h("p", { class: "muted", id: "held-count" }, `共 ${p.quarantined} 条（下表按收到顺序）`),
    table("隔离数据", "held-table", ["类型", "序号", "收到时间", "读数条数", "原因"], held.map((m) => h("tr", { dataset: { held: m.id } },
      h("td", {}, text(L.quarantine_kinds, m.kind, "其他")),
      h("td", {}, m.seq == null ? "—" : String(m.seq)),
      h("td", {}, fmtTime(m.received_at)),
      h("td", {}, m.kind === "telemetry" ? String(m.readings) : "—"),
      h("td", {}, text(L.quarantine_reasons, m.reason, "隔离保存")),
    )), "隔离区中没有该设备的数据"),
  );
  if (decides && p.state === "pending") section.append(decisionForm(p, held, result, main, L, me));
  return section;
}

function decisionForm(p, held, result, main, L, me) {
  const note = h("input", { id: "pending-note", maxlength: 500, placeholder: "审批意见（拒绝时必填）" });
  const msg = h("p", { class: "error", role: "alert", id: "pending-error" });
  const readings = held.filter((m) => m.kind === "telemetry").reduce((n, m) => n + (m.readings || 0), 0);
  const alerts = held.filter((m) => m.kind === "alert").length;
  async function decide(action) {
    msg.textContent = "";
    const why = note.value.trim();
    if (action === "reject" && why.length < 2) {
      msg.textContent = "拒绝接入须填写审批意见";
      return;
    }
    try {
      const done = await api(`registry/pending/${p.id}/${action}`, { method: "POST", json: why ? { note: why } : {} });
      const left = await api(`registry/quarantine?pending_id=${p.id}&limit=1000`);
      const moved = p.quarantined - left.length;
      stateFilter = "pending";
      await devicesPage(main, null, { L, me });
      const box = document.getElementById("pending-result");
      box.hidden = false;
      clear(box, h("p", { id: "pending-outcome", class: "ok" }, action === "approve"
        ? `已批准接入（${text(L.approval_states, done.state, "已批准")}）：隔离数据 ${moved} 条已按原顺序补入（读数 ${readings} 条、告警 ${alerts} 条）`
        : `已拒绝接入：隔离数据 ${moved} 条已转为死信并注明原因`),
      left.length ? h("p", { class: "error" }, `仍有 ${left.length} 条未处理，请刷新后重试`) : null);
      toast(action === "approve" ? "已批准接入" : "已拒绝接入");
    } catch (ex) {
      msg.textContent = ex.message;
    }
  }
  return h("form", { class: "stack", id: "pending-decision", "aria-label": "审批", onsubmit: (e) => e.preventDefault() },
    h("h2", {}, "审批"),
    h("label", { for: "pending-note" }, "审批意见"), note,
    h("div", { class: "actions", style: "margin-top:.6rem" },
      h("button", { type: "button", class: "primary", id: "pending-approve", onclick: () => decide("approve") }, "批准接入"),
      h("button", { type: "button", id: "pending-reject", onclick: () => decide("reject") }, "拒绝接入")),
    msg);
}
