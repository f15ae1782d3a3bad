// Administration pages of the PC console (系统管理): staff (accounts, duties, 执法证号, department), departments,
// market subjects (with CSV import and an empty state that says what to do), sites with their devices. Each page is
// shown only to the account roles that [administration] of cloud/rules/duties.toml names (GET registry/admin-areas);
// staff and sites import a CSV all or nothing (preview first; every refused cell shown with line and column);
// subjects and sites are deactivated (注销/停用) and reactivated with a reason.
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

/** #/admin/<tab>: only the pages the caller's account role may use; any other is refused in the page. */
export async function adminPage(main, tab, ctx) {
  const areas = await api("registry/admin-areas");
  const allowed = areas.filter((a) => a.allowed);
  const known = TABS.some(([k]) => k === tab);
  const current = known ? tab : (allowed[0]?.area || "staff");
  const body = h("div", { id: "admin-body" });
  clear(main, h("h1", {}, "系统管理"),
    allowed.length ? h("nav", { class: "subtabs row", "aria-label": "管理分类" }, TABS.filter(([k]) => allowed.some((a) => a.area === k))
      .map(([k, t]) => h("a", { href: `#/admin/${k}`, ...(k === current ? { "aria-current": "page" } : {}) }, t))) : null,
    body);
  const area = areas.find((a) => a.area === current);
  if (!area?.allowed) {
    clear(body, h("section", { class: "notice", id: "admin-refused", role: "alert" },
      h("strong", {}, `无权使用“${area?.zh || "系统管理"}”页面。`),
      h("p", {}, "该页面及其操作只对职责规则（administration）指定的账号角色开放；如需办理，请联系系统管理员。")));
    return;
  }
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
  const importCard = bulkImportCard({
    id: "staff-import", title: "批量导入人员（CSV）", path: "registry/staff/import", L,
    hint: "列名：登录名、姓名（必填），账号角色（执法检查人员或监管负责人，默认执法检查人员）、部门编码、执法证号、业务职责（多个用顿号分隔，例如 检查人员、执法办案人员）。整个文件全部通过才导入；再次导入同一文件不会重复新增。新账号的初始密码只在导入结果中显示一次。",
    after: () => staffPage(body, { L, me }),
  });
  clear(body,
    h("p", { class: "muted" }, "账号角色决定能登录哪些页面；业务职责决定能办理哪些环节（受理、研判、派发、检查、执法、审核、审批）。系统管理员不担任业务职责，也不参与派发。"),
    table("人员", ["姓名", "账号角色", "部门", "业务职责", "执法证号", "状态", ""], rows, "暂无人员：请在下方新增或批量导入"),
    editor, create, importCard);
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
  const showAll = Boolean(ctx.showDeactivated);
  const [subjects, departments] = await Promise.all([
    api(`registry/subjects?limit=1000${showAll ? "&include_deactivated=true" : ""}`), api("registry/departments"),
  ]);
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
  const toggleAll = h("label", { class: "person" }, h("input", { type: "checkbox", id: "subjects-show-deactivated",
    ...(showAll ? { checked: "" } : {}), onchange: (e) => subjectsAdmin(body, { ...ctx, showDeactivated: e.target.checked }) }), " 显示已注销的主体");
  const list = subjects.length || showAll
    ? h("div", {}, toggleAll, table("市场主体", ["企业名称", "统一社会信用代码", "法定代表人", "风险等级", "属地部门", "状态", ""], subjects.map((s) => h("tr", { class: s.deactivated_at ? "muted" : null },
      h("td", {}, s.name), h("td", {}, s.uscc), h("td", {}, s.legal_representative || "—"), h("td", {}, label(L.grades, s.risk_grade)),
      h("td", {}, depName[s.department_id] || "—"), h("td", {}, s.deactivated_at ? `已注销（${s.deactivation_reason}）` : "在册"),
      h("td", {}, h("button", { type: "button", onclick: () => edit(s) }, "编辑"), " ",
        h("button", { type: "button", onclick: () => statusEditor(editor, { what: "subject", item: s, name: s.name,
          path: `registry/subjects/${s.id}`, after: () => subjectsAdmin(body, ctx) }) }, s.deactivated_at ? "恢复" : "注销")))), "暂无主体"))
    : h("section", { class: "notice", id: "subjects-empty", role: "status" },
      h("strong", {}, "还没有在册的市场主体。"),
      h("p", {}, "线索、检查任务和文书都要用到主体的名称、统一社会信用代码和住所。请先 ",
        h("a", { href: "#subject-import" }, "批量导入 CSV"), "（企业信用信息公示系统导出的文件即可），或在下方逐个登记；已注销的主体可勾选下方“显示已注销的主体”查看。"),
      toggleAll);
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

const ENTITIES = { user: "账号", staff: "人员档案", site: "场所", device: "设备", sensor: "传感器", point: "测点" };

/** An all-or-nothing CSV import (staff, sites): 预览 runs it as a dry run, 导入 writes it; a refused file shows every
 * refused cell (line, column, reason) and nothing is written. */
function bulkImportCard({ id, title, path, hint, after }) {
  const file = h("input", { type: "file", accept: ".csv,text/csv", id: `${id}-file` });
  const out = h("div", { id: `${id}-result`, role: "status" });
  const counts = (r) => Object.entries(r.counts).map(([k, c]) =>
    `${ENTITIES[k] || "记录"}：新增 ${c.created}，更新 ${c.updated}，未变 ${c.unchanged}`).join("；");
  async function send(dryRun) {
    clear(out);
    if (!file.files.length) {
      clear(out, h("p", { class: "error", id: `${id}-error` }, "请选择要导入的 CSV 文件"));
      return;
    }
    const data = new FormData();
    data.append("file", file.files[0]);
    try {
      const r = await api(`${path}${dryRun ? "?dry_run=true" : ""}`, { method: "POST", form: data });
      const head = dryRun ? `预览（未写入）：共 ${r.rows} 行，全部可以导入。` : `已导入 ${r.rows} 行。`;
      clear(out, h("p", { class: "ok", id: `${id}-summary` }, head, counts(r)),
        r.initial_passwords?.length ? h("section", { class: "notice" },
          h("p", {}, h("strong", {}, "新账号的初始密码只显示这一次，请当面或通过安全渠道交给本人，并提醒其登录后修改。")),
          table("初始密码", ["姓名", "登录名", "初始密码"], r.initial_passwords.map((p) => h("tr", {},
            h("td", {}, p.full_name), h("td", {}, p.username), h("td", {}, h("code", {}, p.password)))), "")) : null);
      if (!dryRun) {
        toast("导入完成");
        if (!r.initial_passwords?.length) setTimeout(after, 1500);
      }
    } catch (ex) {
      const errors = ex.body?.errors || [];
      clear(out, h("p", { class: "error", id: `${id}-error` }, ex.message),
        errors.length ? table("导入错误", ["行号", "列", "原因"], errors.map((x) => h("tr", {},
          h("td", {}, `第 ${x.line} 行`), h("td", {}, x.column || "整行"), h("td", {}, x.reason))), "") : null);
    }
  }
  return h("section", { class: "card", id, "aria-label": title }, h("h2", {}, title), h("p", { class: "muted" }, hint),
    h("div", { class: "row" }, h("div", {}, h("label", { for: `${id}-file` }, "CSV 文件"), file)),
    h("div", { class: "actions", style: "margin-top:.6rem" },
      h("button", { type: "button", id: `${id}-preview`, onclick: () => send(true) }, "预览"),
      h("button", { type: "button", class: "primary", id: `${id}-run`, onclick: () => send(false) }, "导入")),
    out);
}

/** 注销/停用 or 恢复 with a reason (journaled by the API). */
function statusEditor(editor, { what, item, name, path, after }) {
  const off = Boolean(item.deactivated_at);
  const reason = h("input", { placeholder: off ? "例如 已恢复营业" : "例如 营业执照已注销、门店已停业" });
  const verb = off ? (what === "subject" ? "恢复" : "恢复启用") : (what === "subject" ? "注销" : "停用");
  const msg = h("p", { class: "error", role: "alert", id: `${what}-status-error` });
  clear(editor, h("section", { class: "card", "aria-label": `${verb}：${name}`, id: `${what}-status` },
    h("h2", {}, `${verb}：${name}`),
    h("p", { class: "muted" }, off ? `已于 ${fmtTime(item.deactivated_at)} ${what === "subject" ? "注销" : "停用"}（${item.deactivation_reason}）。`
      : "历史记录保留；之后不能再派发新任务或关联新线索，默认列表中不再显示（可勾选“显示已注销/停用”查看）。"),
    field(`${what}-status-reason`, "理由", reason),
    h("div", { class: "actions", style: "margin-top:.6rem" }, h("button", { type: "button", class: "primary", id: `${what}-status-submit`,
      onclick: async () => {
        msg.textContent = "";
        try {
          await api(`${path}/${off ? "reactivate" : "deactivate"}`, { method: "POST", json: { reason: reason.value.trim() } });
          toast(`已${verb} ${name}`);
          await after();
        } catch (ex) { msg.textContent = ex.message; }
      } }, `确认${verb}`)), msg));
  editor.scrollIntoView?.();
}

const fmtTime = (iso) => new Date(iso).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai" });

// ---------------------------------------------------------------- sites and devices
async function sitesPage(body, ctx) {
  const showAll = Boolean(ctx.showDeactivated);
  const [sites, subjects, departments] = await Promise.all([
    api(`registry/sites${showAll ? "?include_deactivated=true" : ""}`), api("registry/subjects?limit=1000&include_deactivated=true"),
    api("registry/departments"),
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
  const status = h("div", { id: "site-status-editor" });
  const importCard = bulkImportCard({
    id: "site-import", title: "批量导入场所与设备（CSV）", path: "registry/sites/import",
    hint: "每行一个传感器（尚无传感器时每行一个场所或设备）。列名：场所编号（必填）、场所名称、地址、监管领域（药品/食品/特种设备）、市场主体统一社会信用代码、属地部门编码、经度、纬度、设备编号、设备类型、设备名称、传感器编号、测量量（温度/湿度/其他）、单位、上报间隔秒、测点位置、库区、GSP配置档、温度下限、温度上限。同一场所的后续行可留空场所各列。整个文件全部通过才导入；再次导入同一文件不会重复新增。",
    after: () => sitesPage(body, ctx),
  });
  const toggleAll = h("label", { class: "person" }, h("input", { type: "checkbox", id: "sites-show-deactivated",
    ...(showAll ? { checked: "" } : {}), onchange: (e) => sitesPage(body, { ...ctx, showDeactivated: e.target.checked }) }), " 显示已停用的场所");
  clear(body, toggleAll,
    table("场所", ["场所名称", "地址", "监管领域", "市场主体", "属地部门", "状态", ""], sites.map((s) => h("tr", { class: s.deactivated_at ? "muted" : null },
      h("td", {}, s.name), h("td", {}, s.address || "—"), h("td", {}, SITE_CATEGORIES[s.category] || "其他"),
      h("td", {}, subjectName[s.subject_id] || "—"), h("td", {}, depName[s.department_id] || "—"),
      h("td", {}, s.deactivated_at ? `已停用（${s.deactivation_reason}）` : "在用"),
      h("td", {}, h("button", { type: "button", onclick: () => showDevices(s) }, "设备"), " ",
        h("button", { type: "button", onclick: () => statusEditor(status, { what: "site", item: s, name: s.name,
          path: `registry/sites/${encodeURIComponent(s.site_id)}`, after: () => sitesPage(body, ctx) }) }, s.deactivated_at ? "恢复启用" : "停用")))),
    "暂无场所：请在下方登记或批量导入"),
    status, devices, create, importCard);
}
