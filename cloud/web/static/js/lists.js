// Lists with search, Excel export and statistics (列表检索、导出、统计) for clues, tasks, cases, complaints and
// market subjects.
// The columns, headings and status options come from the API (cloud/lists.py: the lists as data).
import { api, clear, fmtDate, fmtTime, h, toast, token } from "./api.js";

export const LISTS = [["clues", "线索"], ["tasks", "检查任务"], ["cases", "案件"], ["complaints", "投诉举报"], ["subjects", "市场主体"]];
const STATUS_HEADING = { complaints: "线索处理状态", subjects: "信用风险分类" };
const DOMAINS = { food: "食品", drug: "药品", special_equipment: "特种设备" };
const state = {};

function link(kind, row) {
  if (kind === "clues") return `#/clue/${row.id}`;
  if (kind === "tasks") return `#/task/${row.id}`;
  if (kind === "cases") return `#/case/${row.id}`;
  return row.clue_id ? `#/clue/${row.clue_id}` : null;
}

function cell(value, type) {
  if (value == null || value === "") return "—";
  if (type === "datetime") return fmtTime(value);
  if (type === "date") return fmtDate(value);
  return String(value);
}

function query(f) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  return q;
}

/** The filter form shared by the list and statistics pages; `onchange(filters)` on submit. */
function filterForm(kind, f, statuses, departments, onchange) {
  const input = (id, text, key, attrs = {}) => {
    const el = h("input", { id, value: f[key] || "", ...attrs });
    el.addEventListener("change", () => { f[key] = el.value.trim(); });
    return h("div", {}, h("label", { for: id }, text), el);
  };
  const select = (id, text, key, options) => {
    const el = h("select", { id }, h("option", { value: "" }, "全部"),
      Object.entries(options).map(([v, t]) => h("option", { value: String(v), ...(String(f[key] || "") === String(v) ? { selected: "" } : {}) }, t)));
    el.addEventListener("change", () => { f[key] = el.value; });
    return h("div", {}, h("label", { for: id }, text), el);
  };
  const form = h("form", { class: "filters", role: "search", "aria-label": "检索条件" },
    h("div", { class: "row" },
      input("l-q", "关键词", "q", { type: "search", placeholder: "编号、标题、主体、当事人、诉求…" }),
      select("l-status", STATUS_HEADING[kind] || "状态", "status", statuses),
      select("l-domain", "领域", "domain", DOMAINS),
      select("l-department", kind === "subjects" ? "管辖部门" : "承办部门", "department_id", Object.fromEntries(departments.map((d) => [d.id, d.name]))),
      input("l-since", "起始日期", "since", { type: "date" }),
      input("l-until", "截止日期", "until", { type: "date" }),
      h("div", {}, h("button", { type: "submit", class: "primary", id: "l-search" }, "查询"))));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    for (const el of form.querySelectorAll("input")) el.dispatchEvent(new Event("change"));
    onchange(f);
  });
  return form;
}

function tabs(base, kind) {
  return h("nav", { class: "subtabs row", "aria-label": "列表分类" }, LISTS.map(([k, t]) =>
    h("a", { href: `#/${base}/${k}`, ...(k === kind ? { "aria-current": "page" } : {}) }, t)));
}

async function download(kind, f) {
  const resp = await fetch(`/api/v1/lists/${kind}/export.xlsx?${query(f)}`, { headers: { Authorization: `Bearer ${token()}` } });
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    throw new Error(typeof body.detail === "string" ? body.detail : `导出失败（${resp.status}）`);
  }
  const url = URL.createObjectURL(await resp.blob());
  const a = h("a", { href: url, download: `${LISTS.find(([k]) => k === kind)[1]}-${new Date().toISOString().slice(0, 10)}.xlsx` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** #/list/<kind> */
export async function listPage(main, kind) {
  kind = LISTS.some(([k]) => k === kind) ? kind : "clues";
  const f = (state[kind] ??= {});
  const departments = await api("registry/departments").catch(() => []);
  const first = await api(`lists/${kind}?limit=1`);
  const count = h("p", { class: "muted", id: "list-count" });
  const out = h("div", { id: "list-result" });
  const exportButton = h("button", { type: "button", id: "list-export", onclick: async () => {
    try { await download(kind, f); toast("已导出 Excel"); } catch (ex) { toast(ex.message, "error"); }
  } }, "导出 Excel");
  clear(main, h("h1", {}, `${first.title}列表`), tabs("list", kind),
    filterForm(kind, f, first.statuses, departments, () => load()),
    h("div", { class: "row", style: "align-items:center" }, count, h("div", { style: "flex:0 0 auto" }, exportButton,
      " ", h("a", { href: `#/stats/${kind}` }, "查看统计"))),
    out);
  async function load() {
    const q = query(f);
    q.set("limit", "500");
    try {
      const page = await api(`lists/${kind}?${q}`);
      count.textContent = `共 ${page.count} 条${page.overdue ? `，其中超期 ${page.overdue} 条` : ""}${page.count > page.rows.length ? `（显示前 ${page.rows.length} 条，可导出全部）` : ""}`;
      clear(out, h("table", { "aria-label": `${page.title}列表`, id: "list-table" },
        h("thead", {}, h("tr", {}, page.columns.map((c) => h("th", { scope: "col" }, c.heading)))),
        h("tbody", {}, page.rows.length ? page.rows.map((r) => {
          const href = link(kind, r);
          return h("tr", { class: href ? "clickable" : null, onclick: href ? () => { location.hash = href; } : null },
            page.columns.map((c, i) => h("td", {}, i === 0 && href ? h("a", { href }, cell(r[c.key], c.type)) : cell(r[c.key], c.type))));
        }) : h("tr", {}, h("td", { colspan: String(page.columns.length), class: "muted" }, "没有符合条件的记录")))));
    } catch (ex) {
      clear(out, h("p", { class: "error", role: "alert" }, ex.message));
    }
  }
  await load();
}

function bars(title, id, pairs) {
  const max = Math.max(1, ...pairs.map(([, n]) => n));
  return h("section", { class: "card stat", "aria-label": title, id }, h("h2", {}, title),
    pairs.length ? h("table", {}, h("tbody", {}, pairs.map(([k, n]) => h("tr", {},
      h("th", { scope: "row", style: "width:30%" }, k),
      h("td", {}, h("div", { class: "bar", role: "img", "aria-label": `${k} ${n}`, style: `width:${Math.max(2, (n / max) * 100)}%` })),
      h("td", { style: "width:4rem;text-align:right" }, String(n))))))
      : h("p", { class: "muted" }, "暂无数据"));
}

/** #/stats/<kind> */
export async function statsPage(main, kind) {
  kind = LISTS.some(([k]) => k === kind) ? kind : "clues";
  const f = (state[`stats-${kind}`] ??= {});
  const departments = await api("registry/departments").catch(() => []);
  const first = await api(`lists/${kind}?limit=1`);
  const out = h("div", { id: "stats-result" });
  clear(main, h("h1", {}, `${first.title}统计`), tabs("stats", kind),
    filterForm(kind, f, first.statuses, departments, () => load()),
    h("p", {}, h("a", { href: `#/list/${kind}` }, "返回列表")), out);
  async function load() {
    try {
      const s = await api(`lists/${kind}/statistics?${query(f)}`);
      clear(out,
        h("div", { class: "row" },
          h("section", { class: "card", id: "stat-total" }, h("h2", {}, "合计"), h("p", { class: "big" }, `${s.total} 条`)),
          h("section", { class: "card", id: "stat-overdue" }, h("h2", {}, "超期"), h("p", { class: `big ${s.overdue ? "error" : ""}` }, `${s.overdue} 条`))),
        h("div", { class: "grid2" },
          bars(kind === "subjects" ? "按信用风险分类" : "按状态", "stat-status", s.by_status), bars("按领域", "stat-domain", s.by_domain),
          bars(kind === "subjects" ? "按管辖部门" : "按承办部门", "stat-department", s.by_department),
          s.by_category.length ? bars("按类别", "stat-category", s.by_category) : null,
          bars(kind === "subjects" ? "按登记月份" : "按月份", "stat-month", s.by_month)));
    } catch (ex) {
      clear(out, h("p", { class: "error", role: "alert" }, ex.message));
    }
  }
  await load();
}
