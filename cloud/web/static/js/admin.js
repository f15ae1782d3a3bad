// Administration pages of the PC console (系统管理): staff (accounts, duties, 执法证号, department), departments,
// market subjects (with CSV import and an empty state that says what to do), sites with their devices.
// Every write goes through the resource API; its Chinese validation errors are shown beside the form.
import { api, clear, h, label, toast } from "./api.js";

const TABS = [
  ["staff", "人员与职责"], ["departments", "部门"], ["subjects", "市场主体"], ["sites", "场所与设备"],
];
const SITE_CATEGORIES = { drug: "药品", food: "食品", special_equipment: "特种设备" };
const DEVICE_TYPES = { modbus_probe: "Modbus 温湿度探头", probe: "温湿度探头", camera: "摄像机", elevator: "电梯监测终端", boiler: "锅炉监测终端" };

function field(id, text, input) {
  input.id = id;
  return h("div", {}, h("label", { for: id }, text), input);
}

function form(aria, fields, submit, onsubmit) {
  const msg = h("p", { class: "error", role: "alert" });
  const el = h("form", { class: "card", "aria-label": aria }, h("h2", {}, aria), h("div", { class: "row" }, fields),
    h("div", { class: "actions", style: "margin-top:.6rem" }, h("button", { type: "submit", class: "primary" }, submit)), msg);
  el.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    try {
      await onsubmit();
    } catch (ex) {
      msg.textContent = ex.message;
    }
  });
  return el;
}

function table(aria, headings, rows, empty) {
  return h("table", { "aria-label": aria },
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: String(headings.length), class: "muted" }, empty))));
}

/** #/admin/<tab> */
export async function adminPage(main, tab, ctx) {
  const current = TABS.some(([k]) => k === tab) ? tab : "staff";
  const body = h("div", { id: "admin-body" });
  clear(main, h("h1", {}, "系统管理"),
    h("nav", { class: "subtabs row", "aria-label": "管理分类" }, TABS.map(([k, t]) =>
      h("a", { href: `#/admin/${k}`, ...(k === current ? { "aria-current": "page" } : {}) }, t))),
    body);
  const pages = { staff: staffPage, departments: departmentsPage, subjects: subjectsAdmin, sites: sitesPage };
  await pages[current](body, ctx);
}

// ---------------------------------------------------------------- staff
async function staffPage(body, { L, me }) {
  const [users, staff, departments] = await Promise.all([
    api("users?limit=1000"), api("staff").catch(() => []), api("registry/departments"),
  ]);
  const byId = Object.fromEntries(staff.map((s) => [s.user_id, s]));
  const depName = Object.fromEntries(departments.map((d) => [d.id, d.name]));
  const depByCode = Object.fromEntries(departments.map((d) => [d.code, d]));
  const editor = h("div", { id: "staff-editor" });
  const rows = users.data.map((u) => {
    const s = byId[u.id];
    return h("tr", { class: u.is_active ? null : "muted" },
      h("td", {}, u.full_name || "（未填姓名）"), h("td", {}, label(L.roles, u.role)),
      h("td", {}, s?.department_id ? depName[s.department_id] : (depByCode[u.department]?.name || "—")),
      h("td", {}, s?.duties?.length ? s.duties.map((d) => label(L.duties, d)).join("、") : "—"),
      h("td", {}, s?.cert_no || "—"), h("td", {}, u.is_active ? "在用" : "已停用"),
      h("td", {}, h("button", { type: "button", onclick: () => edit(u, s) }, "编辑")));
  });
  const dutyBoxes = (chosen = []) => h("fieldset", { class: "people" }, h("legend", {}, "业务职责（按职责规则可授予的范围）"),
    Object.entries(L.duties).filter(([k]) => k !== "system").map(([k, t]) => h("label", { class: "person" },
      h("input", { type: "checkbox", name: "duty", value: k, ...(chosen.includes(k) ? { checked: "" } : {}) }), ` ${t}`)));
  const depSelect = (value) => h("select", {}, h("option", { value: "" }, "（未分配）"),
    departments.map((d) => h("option", { value: String(d.id), ...(String(value) === String(d.id) ? { selected: "" } : {}) }, d.name)));
  const roleSelect = (value) => h("select", {}, Object.entries(L.roles).filter(([k]) => k !== "device")
    .map(([k, t]) => h("option", { value: k, ...(k === value ? { selected: "" } : {}) }, t)));
  const checked = (box) => [...box.querySelectorAll("input[name=duty]:checked")].map((c) => c.value);

  function edit(u, s) {
    const name = h("input", { value: u.full_name || "" });
    const dep = depSelect(s?.department_id || depByCode[u.department]?.id || "");
    const cert = h("input", { value: s?.cert_no || "", placeholder: "例如 32050819000101" });
    const duties = dutyBoxes(s?.duties || []);
    const msg = h("p", { class: "error", role: "alert", id: "staff-edit-error" });
    const save = async () => {
      msg.textContent = "";
      try {
        const d = departments.find((x) => String(x.id) === dep.value);
        await api(`users/${u.id}`, { method: "PATCH", json: { full_name: name.value.trim(), department: d ? d.code : null } });
        await api(`staff/${u.id}`, { method: "PUT", json: { duties: checked(duties), department_id: d ? d.id : null, cert_no: cert.value.trim() || null } });
        toast(`已保存 ${name.value.trim()}`);
        await staffPage(body, { L, me });
      } catch (ex) { msg.textContent = ex.message; }
    };
    const toggle = async () => {
      msg.textContent = "";
      try {
        await api(`users/${u.id}`, { method: "PATCH", json: { is_active: !u.is_active } });
        toast(u.is_active ? `已停用 ${u.full_name}` : `已启用 ${u.full_name}`);
        await staffPage(body, { L, me });
      } catch (ex) { msg.textContent = ex.message; }
    };
    clear(editor, h("section", { class: "card", "aria-label": "编辑人员" }, h("h2", {}, `编辑：${u.full_name || "（未填姓名）"}`),
      h("div", { class: "row" }, field("edit-name", "姓名", name), field("edit-dep", "部门", dep), field("edit-cert", "执法证号", cert)),
      duties,
      h("div", { class: "actions", style: "margin-top:.6rem" },
        h("button", { type: "button", class: "primary", id: "staff-save", onclick: save }, "保存"),
        h("button", { type: "button", id: "staff-toggle", onclick: toggle }, u.is_active ? "停用账号" : "启用账号")),
      msg));
    editor.scrollIntoView?.();
  }

  const username = h("input", { placeholder: "字母或数字（登录时使用）", autocomplete: "off" });
  const fullName = h("input", { placeholder: "例如 李华" });
  const password = h("input", { type: "password", autocomplete: "new-password", placeholder: "至少 10 位，含字母和数字" });
  const role = roleSelect("inspector");
  const dep = depSelect("");
  const cert = h("input", { placeholder: "执法证号" });
  const duties = dutyBoxes(["inspector"]);
  const create = form("新增人员", [field("new-username", "登录名", username), field("new-name", "姓名", fullName),
    field("new-password", "初始密码", password), field("new-role", "账号角色", role), field("new-dep", "部门", dep),
    field("new-cert", "执法证号", cert), duties], "新增", async () => {
    const d = departments.find((x) => String(x.id) === dep.value);
    const user = await api("users", { method: "POST", json: {
      username: username.value.trim(), full_name: fullName.value.trim(), password: password.value, role: role.value, department: d ? d.code : null,
    } });
    if (role.value !== "admin" && role.value !== "security_admin" && role.value !== "auditor") {
      await api(`staff/${user.id}`, { method: "PUT", json: { duties: checked(duties), department_id: d ? d.id : null, cert_no: cert.value.trim() || null } });
    }
    toast(`已新增 ${fullName.value.trim()}`);
    await staffPage(body, { L, me });
  });
  create.id = "staff-create";
  clear(body,
    h("p", { class: "muted" }, "账号角色决定能登录哪些页面；业务职责决定能办理哪些环节（受理、研判、派发、检查、执法、审核、审批）。系统管理员不担任业务职责，也不参与派发。"),
    table("人员", ["姓名", "账号角色", "部门", "业务职责", "执法证号", "状态", ""], rows, "暂无人员：请在下方新增"),
    editor, create);
}

// ---------------------------------------------------------------- departments
async function departmentsPage(body, ctx) {
  const departments = await api("registry/departments");
  const parent = Object.fromEntries(departments.map((d) => [d.id, d.name]));
  const code = h("input", { placeholder: "字母、数字或短横线" });
  const name = h("input", { placeholder: "例如 平江市场监督管理所" });
  const division = h("input", { placeholder: "6 位行政区划码，例如 320508" });
  const up = h("select", {}, h("option", { value: "" }, "（无）"), departments.map((d) => h("option", { value: String(d.id) }, d.name)));
  const create = form("新增部门", [field("dep-code", "部门编码", code), field("dep-name", "部门名称", name),
    field("dep-division", "辖区行政区划码", division), field("dep-parent", "上级部门", up)], "新增", async () => {
    const json = { code: code.value.trim(), name: name.value.trim() };
    if (division.value.trim()) json.division_code = division.value.trim();
    if (up.value) json.parent_id = Number(up.value);
    await api("registry/departments", { method: "POST", json });
    toast(`已新增部门 ${json.name}`);
    await departmentsPage(body, ctx);
  });
  clear(body,
    table("部门", ["部门名称", "上级部门", "辖区行政区划码"], departments.map((d) => h("tr", {},
      h("td", {}, d.name), h("td", {}, parent[d.parent_id] || "—"), h("td", {}, d.division_code || "—"))), "暂无部门：请在下方新增"),
    create);
}

// ---------------------------------------------------------------- subjects
async function subjectsAdmin(body, ctx) {
  const { L } = ctx;
  const [subjects, departments] = await Promise.all([api("registry/subjects?limit=1000"), api("registry/departments")]);
  const depName = Object.fromEntries(departments.map((d) => [d.id, d.name]));
  const depSelect = (value = "") => h("select", {}, h("option", { value: "" }, "（未分配）"),
    departments.map((d) => h("option", { value: String(d.id), ...(String(value) === String(d.id) ? { selected: "" } : {}) }, d.name)));
  const gradeSelect = (value = "B") => h("select", {}, Object.entries(L.grades).filter(([k]) => k !== "unknown")
    .map(([k, t]) => h("option", { value: k, ...(k === value ? { selected: "" } : {}) }, t)));
  const editor = h("div", { id: "subject-editor" });
  function edit(s) {
    const name = h("input", { value: s.name });
    const rep = h("input", { value: s.legal_representative || "" });
    const addr = h("input", { value: s.address || "" });
    const grade = gradeSelect(s.risk_grade);
    const dep = depSelect(s.department_id || "");
    clear(editor, form(`编辑：${s.name}`, [field("sub-edit-name", "企业名称", name), field("sub-edit-rep", "法定代表人", rep),
      field("sub-edit-addr", "住所", addr), field("sub-edit-grade", "风险等级", grade), field("sub-edit-dep", "属地部门", dep)], "保存", async () => {
      await api(`registry/subjects/${s.id}`, { method: "PATCH", json: {
        name: name.value.trim(), legal_representative: rep.value.trim() || null, address: addr.value.trim() || null,
        risk_grade: grade.value, department_id: dep.value ? Number(dep.value) : null,
      } });
      toast(`已保存 ${name.value.trim()}`);
      await subjectsAdmin(body, ctx);
    }));
  }
  const name = h("input", { placeholder: "营业执照上的名称" });
  const uscc = h("input", { placeholder: "18 位，例如 91320508MA1XR6H1P7", maxlength: "18" });
  const rep = h("input", {});
  const addr = h("input", {});
  const scope = h("input", {});
  const grade = gradeSelect("B");
  const dep = depSelect("");
  const create = form("登记市场主体", [field("sub-name", "企业名称", name), field("sub-uscc", "统一社会信用代码", uscc),
    field("sub-rep", "法定代表人", rep), field("sub-addr", "住所", addr), field("sub-scope", "经营范围", scope),
    field("sub-grade", "风险等级", grade), field("sub-dep", "属地部门", dep)], "登记", async () => {
    const json = { name: name.value.trim(), uscc: uscc.value.trim().toUpperCase(), risk_grade: grade.value };
    if (rep.value.trim()) json.legal_representative = rep.value.trim();
    if (addr.value.trim()) json.address = addr.value.trim();
    if (scope.value.trim()) json.business_scope = scope.value.trim();
    if (dep.value) json.department_id = Number(dep.value);
    await api("registry/subjects", { method: "POST", json });
    toast(`已登记 ${json.name}`);
    await subjectsAdmin(body, ctx);
  });
  create.id = "subject-create";
  const importCard = csvImportCard({
    id: "subject-import", title: "批量导入市场主体（CSV）", path: "registry/subjects/import",
    hint: "列名：企业名称、统一社会信用代码（必填），法定代表人、住所、经营范围、许可证编号、许可证种类、有效期自、有效期至、风险等级（选填）；可直接使用企业信用信息公示系统导出的文件（UTF-8 或 GBK）。",
    departments, after: () => subjectsAdmin(body, ctx),
    summary: (r) => `共 ${r.rows} 行，导入 ${r.accepted} 行（新增主体 ${r.subjects_created}，更新 ${r.subjects_updated}；新增许可证 ${r.licences_created}，更新 ${r.licences_updated}）`,
  });
  const list = subjects.length
    ? table("市场主体", ["企业名称", "统一社会信用代码", "法定代表人", "风险等级", "属地部门", ""], subjects.map((s) => h("tr", {},
      h("td", {}, s.name), h("td", {}, s.uscc), h("td", {}, s.legal_representative || "—"), h("td", {}, label(L.grades, s.risk_grade)),
      h("td", {}, depName[s.department_id] || "—"), h("td", {}, h("button", { type: "button", onclick: () => edit(s) }, "编辑")))), "")
    : h("section", { class: "notice", id: "subjects-empty", role: "status" },
      h("strong", {}, "还没有登记任何市场主体。"),
      h("p", {}, "线索、检查任务和文书都要用到主体的名称、统一社会信用代码和住所。请先 ",
        h("a", { href: "#subject-import" }, "批量导入 CSV"), "（企业信用信息公示系统导出的文件即可），或在下方逐个登记。"));
  clear(body, list, editor, importCard, create);
}

/** A CSV upload card: the strict reader's refusals (line and column) and each refused row are shown in the page. */
function csvImportCard({ id, title, path, hint, departments, after, summary }) {
  const file = h("input", { type: "file", accept: ".csv,text/csv", id: `${id}-file` });
  const dep = h("select", { id: `${id}-dep` }, h("option", { value: "" }, "（按文件或不分配）"),
    (departments || []).map((d) => h("option", { value: String(d.id) }, d.name)));
  const out = h("div", { id: `${id}-result`, role: "status" });
  const card = h("form", { class: "card", id, "aria-label": title }, h("h2", {}, title), h("p", { class: "muted" }, hint),
    h("div", { class: "row" }, h("div", {}, h("label", { for: `${id}-file` }, "CSV 文件"), file),
      departments ? h("div", {}, h("label", { for: `${id}-dep` }, "属地部门"), dep) : null),
    h("div", { class: "actions", style: "margin-top:.6rem" }, h("button", { type: "submit", class: "primary" }, "上传并导入")), out);
  card.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(out);
    if (!file.files.length) {
      clear(out, h("p", { class: "error" }, "请选择要导入的 CSV 文件"));
      return;
    }
    const data = new FormData();
    data.append("file", file.files[0]);
    const q = dep.value ? `?department_id=${dep.value}` : "";
    try {
      const r = await api(`${path}${q}`, { method: "POST", form: data });
      clear(out, h("p", { class: r.errors?.length ? "notice" : "ok" }, summary(r)),
        r.errors?.length ? table("导入错误", ["行号", "原因"], r.errors.map((x) => h("tr", {}, h("td", {}, `第 ${x.line} 行`), h("td", {}, x.reason))), "") : null);
      if (!r.errors?.length) toast("导入完成");
      if (r.accepted) setTimeout(after, 1500);
    } catch (ex) {
      clear(out, h("p", { class: "error", id: `${id}-error` }, ex.message));
    }
  });
  return card;
}

// ---------------------------------------------------------------- sites and devices
async function sitesPage(body, ctx) {
  const [sites, subjects, departments] = await Promise.all([
    api("registry/sites"), api("registry/subjects?limit=1000"), api("registry/departments"),
  ]);
  const subjectName = Object.fromEntries(subjects.map((s) => [s.id, s.name]));
  const depName = Object.fromEntries(departments.map((d) => [d.id, d.name]));
  const devices = h("div", { id: "site-devices" });
  async function showDevices(site) {
    const list = await api(`registry/sites/${encodeURIComponent(site.site_id)}/devices`);
    const deviceId = h("input", { placeholder: "字母、数字或短横线（与边缘设备配置一致）" });
    const name = h("input", { placeholder: "例如 药品冷藏柜 2 号" });
    const type = h("select", {}, Object.entries(DEVICE_TYPES).map(([k, t]) => h("option", { value: k }, t)));
    clear(devices, h("section", { class: "card", "aria-label": "设备" }, h("h2", {}, `${site.name} · 设备`),
      table("设备", ["设备名称", "类型", "型号", "最近上报"], list.map((d) => h("tr", {}, h("td", {}, d.name || "（未命名设备）"),
        h("td", {}, DEVICE_TYPES[d.device_type] || "其他设备"), h("td", {}, d.model || "—"),
        h("td", {}, d.last_announced_at ? new Date(d.last_announced_at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" }) : "—"))), "暂无设备"),
      form("登记设备", [field("dev-id", "设备编号", deviceId), field("dev-name", "设备名称", name), field("dev-type", "类型", type)], "登记", async () => {
        await api("registry/devices", { method: "POST", json: { site_id: site.site_id, device_id: deviceId.value.trim(), name: name.value.trim(), device_type: type.value } });
        toast(`已登记设备 ${name.value.trim()}`);
        await showDevices(site);
      })));
  }
  const siteId = h("input", { placeholder: "字母、数字或短横线（与边缘设备配置一致）" });
  const name = h("input", { placeholder: "例如 仁和大药房观前店" });
  const addr = h("input", {});
  const category = h("select", {}, Object.entries(SITE_CATEGORIES).map(([k, t]) => h("option", { value: k }, t)));
  const subject = h("select", {}, h("option", { value: "" }, "（未关联）"), subjects.map((s) => h("option", { value: String(s.id) }, s.name)));
  const dep = h("select", {}, h("option", { value: "" }, "（未分配）"), departments.map((d) => h("option", { value: String(d.id) }, d.name)));
  const create = form("登记场所", [field("site-id", "场所编号", siteId), field("site-name", "场所名称", name), field("site-addr", "地址", addr),
    field("site-cat", "监管领域", category), field("site-subject", "市场主体", subject), field("site-dep", "属地部门", dep)], "登记", async () => {
    const json = { site_id: siteId.value.trim(), name: name.value.trim(), category: category.value };
    if (addr.value.trim()) json.address = addr.value.trim();
    if (subject.value) json.subject_id = Number(subject.value);
    if (dep.value) json.department_id = Number(dep.value);
    await api("registry/sites", { method: "POST", json });
    toast(`已登记场所 ${json.name}`);
    await sitesPage(body, ctx);
  });
  clear(body,
    table("场所", ["场所名称", "地址", "监管领域", "市场主体", "属地部门", ""], sites.map((s) => h("tr", {},
      h("td", {}, s.name), h("td", {}, s.address || "—"), h("td", {}, SITE_CATEGORIES[s.category] || "其他"),
      h("td", {}, subjectName[s.subject_id] || "—"), h("td", {}, depName[s.department_id] || "—"),
      h("td", {}, h("button", { type: "button", onclick: () => showDevices(s) }, "设备")))), "暂无场所：请在下方登记"),
    devices, create);
}
