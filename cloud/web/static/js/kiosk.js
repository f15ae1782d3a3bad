// Self-service kiosk (自助终端): a 12315-style complaint/report form, no login, field validation,
// a receipt number on success. The server rate-limits and size-limits submissions.
import { API, clear, h, labels } from "./api.js";

const root = document.getElementById("root");
// A registered terminal is provisioned once with /kiosk/#terminal=<credential> (a fragment: never sent to a server
// nor logged); the page keeps it and presents it with every submission and lookup, so the server limits it per
// terminal. Without one, the server limits per client address (stricter).
const TERMINAL_KEY = "ms.kiosk.terminal";
if (location.hash.startsWith("#terminal=")) {
  localStorage.setItem(TERMINAL_KEY, decodeURIComponent(location.hash.slice("#terminal=".length)));
  history.replaceState(null, "", location.pathname + location.search);
}
function kioskHeaders() {
  const credential = localStorage.getItem(TERMINAL_KEY);
  return credential ? { "Content-Type": "application/json", "X-Kiosk-Token": credential } : { "Content-Type": "application/json" };
}
const PHONE = /^\+?[0-9][0-9 \-]{4,19}$/;
const CATEGORIES = ["consumer_dispute", "food", "drug_storage", "special_equipment", "elevator"];

function field(id, text, input, help = "") {
  return h("div", { class: "field" }, h("label", { for: id }, text), input,
    help ? h("p", { class: "muted", id: `${id}-help` }, help) : null,
    h("p", { class: "field-error", id: `${id}-error`, "aria-live": "polite" }));
}

async function form() {
  const L = await labels();
  const kind = h("select", { id: "k-kind", name: "kind" }, h("option", { value: "complaint" }, "投诉（本人与经营者的消费纠纷）"), h("option", { value: "report" }, "举报（发现违法行为，可匿名）"));
  const category = h("select", { id: "k-category", name: "category" }, CATEGORIES.map((c) => h("option", { value: c }, L.categories[c] || c)));
  const name = h("input", { id: "k-name", name: "complainant_name", autocomplete: "name", maxlength: "64", "aria-describedby": "k-name-error" });
  const phone = h("input", { id: "k-phone", name: "complainant_phone", type: "tel", inputmode: "tel", autocomplete: "tel", maxlength: "20", "aria-describedby": "k-phone-error" });
  const address = h("input", { id: "k-address", name: "complainant_address", maxlength: "300", "aria-describedby": "k-address-error" });
  const anonymous = h("input", { id: "k-anon", name: "anonymous", type: "checkbox", style: "width:auto" });
  const resp = h("input", { id: "k-resp", name: "respondent_name", maxlength: "200", "aria-describedby": "k-resp-error" });
  const respAddr = h("input", { id: "k-resp-addr", name: "respondent_address", maxlength: "300", "aria-describedby": "k-resp-addr-error" });
  const request = h("textarea", { id: "k-request", name: "request", rows: "2", maxlength: "2000", "aria-describedby": "k-request-error" });
  const facts = h("textarea", { id: "k-facts", name: "facts", rows: "4", maxlength: "4000", "aria-describedby": "k-facts-error" });
  const when = h("input", { id: "k-when", name: "incident_at", type: "date" });
  const place = h("input", { id: "k-place", name: "incident_place", maxlength: "300" });
  const goods = h("input", { id: "k-goods", name: "goods", maxlength: "200" });
  const amount = h("input", { id: "k-amount", name: "amount", inputmode: "decimal", maxlength: "14", "aria-describedby": "k-amount-error" });
  const status = h("p", { class: "error", role: "alert", id: "k-status" });
  const submit = h("button", { type: "submit", class: "primary" }, "提交");
  const personal = h("fieldset", { style: "border:0;padding:0;margin:0" }, h("legend", { class: "muted" }, "您的信息（仅用于联系您，不会公开）"),
    field("k-name", "姓名", name), field("k-phone", "联系电话", phone), field("k-address", "联系地址", address));
  const f = h("form", { novalidate: true, "aria-label": "投诉举报" },
    h("h1", {}, "市场监管投诉举报"),
    h("p", { class: "muted", style: "text-align:center" }, "自助终端 · 无需登录 · 提交后获得受理回执号"),
    h("p", { style: "text-align:center" }, h("button", { type: "button", id: "k-go-progress", onclick: () => progress() }, "查询办理进度")),
    field("k-kind", "类型", kind), field("k-category", "问题类别", category),
    h("label", { for: "k-anon", style: "font-weight:400" }, anonymous, " 匿名举报（仅举报可匿名）"),
    personal,
    field("k-resp", "被投诉（举报）经营者名称", resp), field("k-resp-addr", "经营者地址", respAddr),
    field("k-request", "您的诉求", request, "例如：要求退货退款、赔偿"),
    field("k-when", "事发日期", when), field("k-place", "事发地点", place),
    field("k-goods", "涉及商品或服务", goods), field("k-amount", "涉及金额（元）", amount),
    field("k-facts", "事实经过", facts, "发生了什么，至少 5 个字"),
    status, h("p", { style: "text-align:center" }, submit));
  const sync = () => {
    const isReport = kind.value === "report";
    anonymous.disabled = !isReport;
    if (!isReport) anonymous.checked = false;
    personal.hidden = anonymous.checked;
  };
  kind.addEventListener("change", sync);
  anonymous.addEventListener("change", sync);
  sync();

  function check() {
    const errors = {};
    const complaint = kind.value === "complaint";
    const need = (el, msg) => { if (!el.value.trim()) errors[el.id] = msg; };
    if (!anonymous.checked) {
      if (complaint) {
        need(name, "请填写姓名");
        need(address, "请填写联系地址");
        need(phone, "请填写联系电话");
      }
      if (phone.value.trim() && !PHONE.test(phone.value.trim())) errors[phone.id] = "电话号码格式不正确（只能包含数字、空格和 -）";
    }
    if (resp.value.trim().length < 2) errors[resp.id] = "请填写经营者名称（至少 2 个字）";
    if (complaint) {
      need(respAddr, "请填写经营者地址");
      need(request, "请填写您的诉求");
    }
    if (facts.value.trim().length < 5) errors[facts.id] = "请描述事实经过（至少 5 个字）";
    if (amount.value.trim() && !/^[0-9]{1,12}(\.[0-9]{1,2})?$/.test(amount.value.trim())) errors[amount.id] = "金额请填写数字，最多两位小数";
    for (const el of [name, phone, address, resp, respAddr, request, facts, amount]) {
      el.setAttribute("aria-invalid", errors[el.id] ? "true" : "false");
      document.getElementById(`${el.id}-error`).textContent = errors[el.id] || "";
    }
    return errors;
  }

  let tried = false;
  f.addEventListener("input", () => { if (tried) check(); });
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    tried = true;
    status.textContent = "";
    const errors = check();
    const first = Object.keys(errors)[0];
    if (first) {
      status.textContent = "请按提示补充或更正标红的内容";
      document.getElementById(first).focus();
      return;
    }
    const body = {
      kind: kind.value, category: category.value, anonymous: anonymous.checked,
      respondent_name: resp.value.trim(), respondent_address: respAddr.value.trim() || null,
      request: request.value.trim(), facts: facts.value.trim(),
      incident_at: when.value ? `${when.value}T00:00:00+08:00` : null, incident_place: place.value.trim() || null,
      goods: goods.value.trim() || null, amount: amount.value.trim() || null,
    };
    if (!anonymous.checked) Object.assign(body, { complainant_name: name.value.trim() || null, complainant_phone: phone.value.trim() || null, complainant_address: address.value.trim() || null });
    submit.disabled = true;
    try {
      const r = await fetch(`${API}/console/kiosk/complaints`, { method: "POST", headers: kioskHeaders(), body: JSON.stringify(body) });
      const data = await r.json().catch(() => ({}));
      if (r.status === 201) return receipt(data);
      status.textContent = typeof data.detail === "string" ? data.detail : `提交失败（${r.status}），请稍后再试`;
    } catch {
      status.textContent = "网络连接失败，请稍后再试或拨打 12315";
    }
    submit.disabled = false;
  });
  clear(root, f);
}

function receipt(r) {
  const when = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", dateStyle: "long", timeStyle: "short" }).format(new Date(r.received_at));
  clear(root, h("section", { class: "receipt", role: "status", "aria-live": "polite" },
    h("h1", {}, "提交成功"),
    h("p", {}, "受理回执号"), h("p", { class: "no", id: "receipt-no" }, r.receipt_no),
    r.verify_code ? [h("p", {}, "查询码（凭回执号和查询码查询办理进度，请勿告知他人）"), h("p", { class: "no", id: "verify-code" }, r.verify_code)] : null,
    h("p", {}, `提交时间：${when}`),
    r.accept_due ? h("p", {}, `市场监管部门将于 ${r.accept_due.replaceAll("-", "/")} 前决定是否受理。`) : null,
    h("p", { class: "muted" }, r.message),
    h("p", {}, h("button", { type: "button", class: "primary", onclick: form }, "返回首页"),
      " ", h("button", { type: "button", onclick: () => progress(r.receipt_no) }, "查询办理进度"))));
}

// progress lookup: receipt number + verification code; the answer has no personal data
function progress(receiptNo = "") {
  const no = h("input", { id: "p-receipt", maxlength: "64", value: receiptNo, autocomplete: "off" });
  const code = h("input", { id: "p-code", inputmode: "numeric", maxlength: "6", autocomplete: "off" });
  const status = h("p", { class: "error", role: "alert", id: "p-status" });
  const out = h("section", { id: "p-result", "aria-live": "polite" });
  const f = h("form", { novalidate: true, "aria-label": "办理进度查询" },
    h("h1", {}, "办理进度查询"),
    field("p-receipt", "受理回执号", no), field("p-code", "查询码（6 位数字）", code),
    status, h("p", { style: "text-align:center" }, h("button", { type: "submit", class: "primary" }, "查询"),
      " ", h("button", { type: "button", onclick: form }, "返回首页")), out);
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "";
    clear(out);
    if (!no.value.trim() || !/^[0-9]{6}$/.test(code.value.trim())) { status.textContent = "请填写回执号和 6 位数字查询码"; return; }
    try {
      const r = await fetch(`${API}/console/kiosk/progress`, { method: "POST", headers: kioskHeaders(), body: JSON.stringify({ receipt_no: no.value.trim(), code: code.value.trim() }) });
      const data = await r.json().catch(() => ({}));
      if (!r.ok) { status.textContent = typeof data.detail === "string" ? data.detail.split(" / ")[0] : `查询失败（${r.status}）`; return; }
      clear(out, h("dl", { class: "kv" },
        h("dt", {}, "回执号"), h("dd", {}, data.receipt_no),
        h("dt", {}, "类型"), h("dd", {}, `${data.kind_label} · ${data.category_label}`),
        h("dt", {}, "提交日期"), h("dd", {}, data.received_on.replaceAll("-", "/")),
        h("dt", {}, "办理状态"), h("dd", { id: "p-stage" }, data.stage),
        data.due ? [h("dt", {}, "期限"), h("dd", { id: "p-due" }, data.due.label)] : null,
        data.ended_on ? [h("dt", {}, "办结日期"), h("dd", {}, data.ended_on.replaceAll("-", "/"))] : null));
    } catch {
      status.textContent = "网络连接失败，请稍后再试或拨打 12315";
    }
  });
  clear(root, f);
  (receiptNo ? code : no).focus();
}

form();
