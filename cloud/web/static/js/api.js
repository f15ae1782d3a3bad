// Shared helpers of the console pages: API calls with the bearer token, labels, Beijing-time formatting,
// the live SSE feed and small DOM helpers. Plain ES module, no framework.

export const API = "/api/v1";
const TOKEN_KEY = "ms.token";
const TZ = "Asia/Shanghai";

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function logout() {
  localStorage.removeItem(TOKEN_KEY);
  location.reload();
}

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.body = body;
  }
}

function explain(body, status) {
  if (!body) return `请求失败（${status}）`;
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) {
    return body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}：${d.msg}`).join("；");
  }
  return `请求失败（${status}）`;
}

export async function api(path, { method = "GET", json, form, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  const t = token();
  if (t) init.headers.Authorization = `Bearer ${t}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const resp = await fetch(path.startsWith("/") ? path : `${API}/${path}`, init);
  const type = resp.headers.get("content-type") || "";
  const body = type.includes("json") ? await resp.json() : await resp.text();
  if (resp.status === 401 && t) {
    localStorage.removeItem(TOKEN_KEY);
    location.reload();
  }
  if (!resp.ok) throw new ApiError(resp.status, explain(typeof body === "object" ? body : null, resp.status), body);
  return body;
}

export async function login(username, password) {
  const form = new URLSearchParams({ username, password });
  const resp = await fetch(`${API}/auth/token`, { method: "POST", body: form });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(resp.status, explain(body, resp.status), body);
  localStorage.setItem(TOKEN_KEY, body.access_token);
  return body;
}

/** The signed-in user with workflow duties: {username, full_name, role, duties, user_id, department_id}. */
export async function whoami() {
  const me = await api("auth/me");
  let duties = [];
  try {
    const wf = await api("workflow/me");
    duties = wf.duties || [];
  } catch {
    duties = [];
  }
  return { ...me, duties };
}

let labelsPromise = null;
export function labels() {
  labelsPromise ??= api("console/labels").catch(() => ({
    domains: {}, categories: {}, severities: {}, kinds: {}, channels: {}, duties: {}, states: {}, actions: {}, checklist: [],
  }));
  return labelsPromise;
}

export function label(map, key) {
  return (map && key != null && map[key]) || key || "—";
}

const dtf = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
});
const tf = new Intl.DateTimeFormat("zh-CN", { timeZone: TZ, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

/** ISO timestamp → "2026/11/26 16:05" in Beijing time. */
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dtf.format(d);
}
export function fmtClock(iso) {
  return iso ? tf.format(new Date(iso)) : "—";
}
export function fmtDate(isoDate) {
  if (!isoDate) return "—";
  const [y, m, d] = isoDate.slice(0, 10).split("-");
  return `${y}年${Number(m)}月${Number(d)}日`;
}
/** A computed due date: marked 预计 when the calendar year behind it has no official holiday data (certainty
 * "provisional" from the API), so that a provisional date is never shown as certain. */
export const PROVISIONAL_MARK = "（预计，以官方公布为准）";
export function fmtDue(isoDate, certainty) {
  return fmtDate(isoDate) + (isoDate && certainty === "provisional" ? PROVISIONAL_MARK : "");
}
/** Today's date (YYYY-MM) in Beijing. */
export function beijingMonth() {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit" }).format(new Date());
  return parts.slice(0, 7);
}

export function daysLeftText(n) {
  if (n == null) return "—";
  if (n < 0) return `已超期 ${-n} 个工作日`;
  if (n === 0) return "今日到期";
  return `剩余 ${n} 个工作日`;
}

/** Live feed of alerts/clues/tasks (Server-Sent Events); reconnects by itself. Returns the EventSource. */
export function liveFeed(onEvent, onState = () => {}, after = null) {
  const q = new URLSearchParams({ access_token: token() || "" });
  if (after != null) q.set("after", String(after));
  const src = new EventSource(`${API}/console/live?${q}`);
  for (const type of ["alert", "clue", "task"]) {
    src.addEventListener(type, (e) => onEvent(JSON.parse(e.data)));
  }
  src.onopen = () => onState(true);
  src.onerror = () => onState(false);
  return src;
}

// ---- tiny DOM helpers
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

export function toast(message, kind = "info") {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div", { id: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = h("div", { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 6000 : 3500);
}

/** Fetch a protected file (evidence, PDF) with the token and return an object URL. */
export async function blobUrl(path) {
  const resp = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
  if (!resp.ok) throw new ApiError(resp.status, `无法读取文件（${resp.status}）`);
  return URL.createObjectURL(await resp.blob());
}

export function severityBadge(sev, labelsMap) {
  return h("span", { class: `badge sev-${sev}` }, label(labelsMap, sev));
}

/** Login form rendered into `root`; resolves after a successful login. */
export function loginForm(root, { title, hint = "" }) {
  return new Promise((resolve) => {
    const err = h("p", { class: "error", role: "alert" });
    const user = h("input", { id: "login-user", name: "username", autocomplete: "username", required: true });
    const pass = h("input", { id: "login-pass", name: "password", type: "password", autocomplete: "current-password", required: true });
    const form = h(
      "form",
      { class: "login card", "aria-label": "登录" },
      h("h1", {}, title),
      hint ? h("p", { class: "muted" }, hint) : null,
      h("label", { for: "login-user" }, "用户名"),
      user,
      h("label", { for: "login-pass" }, "密码"),
      pass,
      err,
      h("button", { type: "submit", class: "primary" }, "登录"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.textContent = "";
      try {
        await login(user.value.trim(), pass.value);
        resolve();
      } catch (ex) {
        err.textContent = ex.message || "登录失败";
      }
    });
    clear(root, form);
    user.focus();
  });
}

/** Ensure a signed-in user (showing the login form when needed). */
export async function session(root, opts) {
  if (token()) {
    try {
      return await whoami();
    } catch {
      localStorage.removeItem(TOKEN_KEY);
    }
  }
  await loginForm(root, opts);
  return whoami();
}
