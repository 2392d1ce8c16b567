// Candor console: a small single-page app over the admin API. No build step;
// every string goes through t(); all data is inserted as text, never HTML
// (agent- and employee-supplied strings are untrusted).
"use strict";

const S = { me: null, csrf: null, lang: "zh-CN", tz: "Asia/Shanghai", perms: new Set(), departments: [], employees: [] };
window.__candorErrors = [];
window.addEventListener("error", (e) => window.__candorErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.__candorErrors.push(String(e.reason)));

function t(key, vars) {
  let s = (window.CANDOR_I18N[S.lang] || {})[key] ?? window.CANDOR_I18N.en[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, v);
  return s;
}

// h("tag.class#id", {attrs, on: {click}}, ...children)
function h(spec, attrs, ...kids) {
  const [tagAndClass, id] = spec.split("#");
  const [tag, ...classes] = tagAndClass.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (id) el.id = id;
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) { kids.unshift(attrs); attrs = null; }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (v === true) el.setAttribute(k, "");
    else if (v !== false && v != null) el.setAttribute(k, v);
  }
  for (const kid of kids.flat()) if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  return el;
}

async function api(path, opts = {}) {
  const headers = { "content-type": opts.contentType || "application/json" };
  if (S.csrf && opts.method && opts.method !== "GET") headers["x-csrf-token"] = S.csrf;
  const raw = typeof opts.body === "string" || opts.body instanceof Blob;
  const body = opts.body === undefined ? undefined : raw ? opts.body : JSON.stringify(opts.body);
  const r = await fetch(path, { method: opts.method || "GET", headers, body, credentials: "same-origin" });
  if (r.status === 401 && !opts.noRedirect) { S.me = null; render(); throw new Error("401"); }
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
  return r.status === 204 ? null : r.json();
}

const fmtTime = (ms) => ms ? new Intl.DateTimeFormat(S.lang, { timeZone: S.tz, dateStyle: "short", timeStyle: "medium" }).format(new Date(ms)) : t("never");
const fmtNum = (n) => new Intl.NumberFormat(S.lang).format(n);
const catName = (c) => t("cat_" + c);
const deptName = (id) => (S.departments.find((d) => d.id === id) || {}).name || t("none");
const empName = (id) => (S.employees.find((e) => e.id === id) || {}).name || t("none");
const can = (p) => S.perms.has(p);
function msg(text, error) { return h("div.msg" + (error ? ".error" : ""), text); }
function errText(message) {
  for (const [re, out] of (window.CANDOR_ERRORS[S.lang] || [])) {
    const m = message.match(re);
    if (m) return out.replace(/\$(\d)/g, (_, i) => m[Number(i)] ?? "");
  }
  return message;
}
function table(headers, rows, onClick) {
  if (!rows.length) return h("p.muted", t("empty"));
  return h("table", h("thead", h("tr", headers.map((x) => h("th", t(x))))),
    h("tbody", rows.map((r) => h("tr" + (onClick ? ".clickable" : ""), onClick ? { on: { click: () => onClick(r) } } : null, r.cells.map((c) => h("td", c))))));
}
function form(fields, submitLabel, onSubmit) {
  const out = h("div");
  const f = h("form.row", { on: { submit: async (e) => {
    e.preventDefault();
    out.replaceChildren();
    try { const r = await onSubmit(new FormData(f)); if (r) out.append(r); } catch (err) { out.append(msg(errText(err.message), true)); }
  } } }, fields, h("button", { type: "submit" }, submitLabel));
  return h("div", f, out);
}
function select(name, options, value) {
  return h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: String(v) === String(value) }, label)));
}
const deptOptions = (withNone) => [...(withNone ? [["", t("none")]] : []), ...S.departments.map((d) => [d.id, d.name])];

// ---------- pages ----------

const PAGES = [
  ["dashboard", "nav_dashboard", "view_agents", pageDashboard],
  ["agents", "nav_agents", "view_agents", pageAgents],
  ["org", "nav_org", "view_org", pageOrg],
  ["policies", "nav_policies", "view_policies", pagePolicies],
  ["consent", "nav_consent", "view_consent", pageConsent],
  ["timeline", "nav_timeline", "view_events", pageTimeline],
  ["stats", "nav_stats", "view_events", pageStats],
  ["apps", "nav_apps", "view_policies", pageApps],
  ["software", "nav_software", "view_policies", pageSoftware],
  ["web", "nav_web", "view_events", pageWeb],
  ["screen", "nav_screen", "view_events", pageScreen],
  ["live", "nav_live", "view_events", pageLive],
  ["wall", "nav_wall", "view_events", pageWall],
  ["chat", "nav_chat", "view_chat", pageChat],
  ["alerts", "nav_alerts", "view_alerts", pageAlerts],
  ["events", "nav_events", "view_events", pageEvents],
  ["retention", "nav_retention", "view_consent", pageRetention],
  ["access", "nav_access", "view_access_log", pageAccess],
  ["admins", "nav_admins", "manage_admins", pageAdmins],
  ["mydata", "nav_mydata", "own_data", pageMyData],
  ["notice", "nav_notice", "own_data", pageNotice],
  ["views", "nav_views", "own_data", pageViews],
  ["account", "nav_account", null, pageAccount],
];

async function pageDashboard(main) {
  const d = await api("/api/v1/dashboard");
  main.append(h("h1", t("nav_dashboard")),
    h("div.cards", [["agents_total", d.agents_total], ["agents_online", d.agents_online], ["agents_offline", d.agents_offline]]
      .map(([k, v]) => h("div.card#card-" + k, h("div.num", fmtNum(v)), h("div.label", t(k))))),
    h("h2", t("problems")),
    d.problems.length ? table(["host", "kind", "detail"], d.problems.map((p) => ({ cells: [p.hostname, t("problem_" + p.kind), p.detail] })))
      : h("p.muted", t("no_problems")));
  if (d.recent_alerts) {
    main.append(h("h2", t("recent_alerts")), alertTable(d.recent_alerts));
  }
  if (d.activity_today) {
    main.append(h("h2", t("activity_today")), activitySummary(d.activity_today, "dash"));
  }
  if (d.events_today) {
    main.append(h("h2", t("events_today")),
      table(["category", "count", "duration"], d.events_today.map((x) => ({ cells: [catName(x.category), fmtNum(x.events), fmtDur(x.duration_ms)] }))));
  }
}

const fmtDur = (ms) => { const m = Math.round(ms / 60000); return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m} min`; };
const today = () => new Intl.DateTimeFormat("en-CA", { timeZone: S.tz }).format(new Date());
const daysAgo = (n) => new Intl.DateTimeFormat("en-CA", { timeZone: S.tz }).format(new Date(Date.now() - n * 86400000));
const alertText = (a) => a.data && Object.keys(a.data).length ? t("alertd_" + a.kind, a.data) : a.detail;
const sevClass = (s) => s === "critical" || s === "warning" ? "span.bad" : "span";

// Rows open the alert's page, except in the portal (`linked` false), which has none.
function alertTable(alerts, linked = true) {
  return table(["time", "agent", "kind", "severity", "detail", "status", "assignee"], alerts.map((a) => ({ a, cells: [fmtTime(a.ts_ms), a.agent_id ? "#" + a.agent_id : t("none"), t("alert_" + a.kind), h(sevClass(a.severity), t("sev_" + a.severity)), alertText(a), t("st_" + a.status), a.assignee || t("none")] })),
    linked ? (r) => { location.hash = "#/alerts/" + r.a.id; } : null);
}

async function pageAlerts(main, arg) {
  if (arg) return pageAlert(main, Number(arg));
  const q = new URLSearchParams(location.hash.split("?")[1] || "");
  const status = q.get("status") ?? "open";
  const list = await api("/api/v1/alerts?" + (status ? "status=" + status : ""));
  const filter = select("status", [["open", t("st_open")], ["acknowledged", t("st_acknowledged")], ["closed", t("st_closed")], ["", t("any")]], status);
  filter.id = "alert-status";
  filter.addEventListener("change", () => { location.hash = "#/alerts?status=" + filter.value; });
  main.append(h("h1", t("nav_alerts")), h("div.row", h("label", t("status"), filter)), h("p"), alertTable(list));
}

async function pageAlert(main, id) {
  const { alert: a, comments } = await api("/api/v1/alerts/" + id);
  main.append(h("h1", `${t("alert_" + a.kind)} #${a.id}`),
    h("div.panel", h("p", alertText(a)), h("p.muted", `${fmtTime(a.ts_ms)} · #${a.agent_id ?? ""} · ${t("sev_" + a.severity)} · ${t("st_" + a.status)} · ${t("assignee")}: ${a.assignee || t("none")}`)));
  if (can("manage_alerts")) {
    main.append(h("div.row",
      ["acknowledged", "closed", "open"].filter((s) => s !== a.status).map((s) => h("button.secondary#alert-" + s, { on: { click: async () => { await api("/api/v1/alerts/" + id, { method: "PUT", body: { status: s } }); route(); } } }, t("to_" + s))),
      h("button.secondary#alert-assign-me", { on: { click: async () => { await api("/api/v1/alerts/" + id, { method: "PUT", body: { assignee: S.me.username } }); route(); } } }, t("assign_to_me"))));
  }
  main.append(h("h2", t("comments")), table(["time", "actor", "note"], comments.map((c) => ({ cells: [fmtTime(c.ts_ms), c.author, c.text] }))));
  if (can("manage_alerts")) {
    main.append(form([h("label", t("comment"), h("input#alert-comment", { name: "text", size: 50, required: true }))], t("add"), async (f) => {
      await api(`/api/v1/alerts/${id}/comments`, { method: "POST", body: { text: f.get("text") } });
      route();
    }));
  }
}

async function pageTimeline(main, arg) {
  const [emp, date] = (arg || "").split("@");
  const pick = select("employee", [["", t("choose_employee")], ...S.employees.map((e) => [e.id, e.name])], emp);
  pick.id = "timeline-employee";
  const day = h("input#timeline-date", { type: "date", value: date || today() });
  const go = () => { if (pick.value) location.hash = `#/timeline/${pick.value}@${day.value}`; };
  pick.addEventListener("change", go); day.addEventListener("change", go);
  main.append(h("h1", t("nav_timeline")), h("div.row", h("label", t("employee"), pick), h("label", t("date"), day)));
  if (!emp) return;
  const tl = await api(`/api/v1/employees/${Number(emp)}/timeline?date=${encodeURIComponent(date || today())}`);
  main.append(h("h2", `${tl.employee.name} · ${tl.date}`), dayStrip(tl), activitySummary(tl.activity, "timeline"));
  if (tl.alerts.length) main.append(h("h2", t("nav_alerts")), alertTable(tl.alerts));
  main.append(h("h2", t("events") + ` (${fmtNum(tl.events.length)}${tl.truncated ? "+" : ""})`),
    table(["time", "agent", "category", "duration", "payload"], tl.events.slice(0, 500).map((e) => ({ cells: [fmtTime(e.ts_ms), "#" + e.agent_id, catName(e.category), e.duration_ms ? fmtDur(e.duration_ms) : "", describe(e.payload)] }))));
}

// An event's content for people: activity spans by application and title.
function describe(p) {
  if (p.type === "activity") return h("span", h("strong", p.app), p.title ? " — " + p.title : "", " ", h("span.tag", t("state_" + p.state)));
  if (p.type === "process_start") return h("span", t("proc_started"), " ", h("strong", p.exe || (p.comm ? `[${p.comm}]` : t("proc_gone"))), p.package ? h("span.tag", p.package) : null, " ", h("span.muted.mono", `pid ${p.pid} · ${p.user || p.uid || "?"} · ${p.sha256 ? p.sha256.slice(0, 12) : t("no_hash")}`), p.cmdline ? h("div.mono", p.cmdline.join(" ")) : null);
  if (p.type === "process_exit") return h("span", t("proc_exited"), " ", h("strong", p.exe || "pid " + p.pid), p.exit_code != null ? h("span.muted", ` (${p.exit_code})`) : null);
  if (p.type === "software_control") return h("span", h("span." + (p.outcome === "blocked" ? "bad" : "muted"), t("sw_" + p.outcome)), " ", h("strong", p.exe), " ", h("span.tag", p.rule || t("sw_reason_" + p.reason)), p.count > 1 ? h("span.muted", " ×" + fmtNum(p.count)) : null);
  if (p.type === "package_change") return h("span", t("pkg_" + p.action), " ", h("strong", p.package), p.version ? h("span.muted", " " + p.version) : null);
  if (p.type === "app_info") return h("span.muted", t("app_described", { app: p.app, name: appName(p) }));
  return h("code", JSON.stringify(p));
}

const svgEl = (tag, attrs, text) => {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
};
const CLASS_COLOURS = { productive: "#18794e", neutral: "#8a94a6", unproductive: "#b42318" };
const classColour = (c) => CLASS_COLOURS[c] || "#7a5af8";
const className = (c) => (window.CANDOR_I18N.en["class_" + c] ? t("class_" + c) : c);
const appName = (a) => (S.lang === "zh-CN" && a.name_zh) || a.name || a.app;
function appLabel(a) {
  return h("span.app", a.has_icon ? h("img.icon", { src: `/api/v1/apps/${encodeURIComponent(a.app)}/icon`, alt: "" }) : h("span.icon.letter", appName(a).slice(0, 1).toUpperCase()),
    appName(a), appName(a) !== a.app ? h("span.muted.mono", " " + a.app) : null);
}

// Active time split by class as one stacked SVG bar with a legend.
function classSplit(classes, id) {
  const total = Object.values(classes).reduce((a, b) => a + b, 0);
  const svg = svgEl("svg", { viewBox: "0 0 1000 24", width: "100%", height: 24, preserveAspectRatio: "none", id, role: "img" });
  let x = 0;
  for (const [c, ms] of Object.entries(classes)) {
    const w = total ? (ms / total) * 1000 : 0;
    svg.append(svgEl("rect", { x, y: 0, width: w, height: 24, fill: classColour(c), "data-class": c, "data-ms": ms }));
    x += w;
  }
  const legend = Object.entries(classes).map(([c, ms]) => h("span.tag.class-" + c, `${className(c)} ${fmtDur(ms)} (${total ? Math.round((ms / total) * 100) : 0}%)`));
  return h("div.panel", svg, h("div", legend.length ? legend : h("span.muted", t("empty"))));
}

// Totals from the activity rollups: cards, class split, applications.
function activitySummary(a, id) {
  const cards = [["active_time", fmtDur(a.active_ms)], ["idle_time", fmtDur(a.idle_ms)], ["locked_time", fmtDur(a.locked_ms)],
    ["first_activity", a.first_ms ? fmtTime(a.first_ms) : t("none")], ["last_activity", a.last_ms ? fmtTime(a.last_ms) : t("none")]];
  return h("div#" + id + "-activity",
    h("div.cards", cards.map(([k, v]) => h("div.card#" + id + "-" + k, h("div.num", v), h("div.label", t(k))))),
    h("h2", t("class_split")), classSplit(a.classes, id + "-split"),
    h("h2", t("time_per_app")),
    h("div#" + id + "-apps", table(["application", "class", "active_time", "idle_time", "share"], a.apps.map((x) => ({ cells: [
      appLabel(x), h("span.tag.class-" + x.class, className(x.class)), fmtDur(x.active_ms), fmtDur(x.idle_ms + x.locked_ms),
      a.active_ms ? Math.round((x.active_ms / a.active_ms) * 100) + "%" : "—"] })))));
}

// One day as a strip of activity spans coloured by state (active, idle, locked).
function dayStrip(tl) {
  const W = 1000, len = tl.day_end_ms - tl.day_start_ms;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} 40`, width: "100%", id: "timeline-chart", role: "img" });
  svg.append(svgEl("rect", { x: 0, y: 0, width: W, height: 24, fill: "#eef0f4" }));
  const colour = { active: "#2455c3", idle: "#c9ced8", locked: "#1d2330" };
  for (const e of tl.events) {
    if (e.payload.type !== "activity" || !e.duration_ms) continue;
    const x = ((e.ts_ms - tl.day_start_ms) / len) * W, w = Math.max(0.5, (e.duration_ms / len) * W);
    const r = svgEl("rect", { x, y: 0, width: w, height: 24, fill: colour[e.payload.state] || "#7a5af8", "data-state": e.payload.state });
    r.append(svgEl("title", {}, `${e.payload.app} · ${t("state_" + e.payload.state)} · ${fmtTime(e.ts_ms)} · ${fmtDur(e.duration_ms)}`));
    svg.append(r);
  }
  for (let hr = 0; hr <= 24; hr += 3) svg.append(svgEl("text", { x: Math.min(W - 10, (hr / 24) * W), y: 37, "font-size": 10, fill: "#5b6375" }, String(hr).padStart(2, "0")));
  return h("div.panel", svg);
}

// A bar chart as inline SVG; labels and numbers are text nodes.
function barChart(data, id) {
  const el = svgEl;
  const W = 900, H = 160, pad = 24, max = Math.max(1, ...data.map((d) => d[1]));
  const bw = (W - pad) / data.length;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H + 20}`, width: "100%", id, role: "img" });
  data.forEach(([label, v], i) => {
    const bh = (v / max) * (H - pad);
    svg.append(el("rect", { x: pad + i * bw + 2, y: H - bh, width: Math.max(1, bw - 4), height: bh, fill: "#2455c3", "data-value": v }));
    if (data.length <= 31 || i % Math.ceil(data.length / 31) === 0) svg.append(el("text", { x: pad + i * bw + bw / 2, y: H + 14, "font-size": 10, "text-anchor": "middle", fill: "#5b6375" }, label));
  });
  svg.append(el("text", { x: 0, y: 12, "font-size": 10, fill: "#5b6375" }, fmtNum(max)));
  return h("div.panel", svg);
}

// The date range, department and employee of a statistics page, from its URL;
// the form changes the URL, so a view can be bookmarked.
function rangeQuery(page) {
  const q = new URLSearchParams(location.hash.split("?")[1] || "");
  const from = q.get("from") || daysAgo(6), to = q.get("to") || today();
  const dept = q.get("department") || "", emp = q.get("employee") || "";
  const params = new URLSearchParams({ from, to });
  if (dept) params.set("department", dept);
  if (emp) params.set("employee", emp);
  const f = form([h("label", t("from"), h(`input#${page}-from`, { type: "date", name: "from", value: from })), h("label", t("to"), h(`input#${page}-to`, { type: "date", name: "to", value: to })),
    h("label", t("department"), select("department", deptOptions(true), dept)), h("label", t("employee"), select("employee", [["", t("any")], ...S.employees.map((e) => [e.id, e.name])], emp))],
    t("search"), async (fd) => {
      const p = new URLSearchParams();
      for (const k of ["from", "to", "department", "employee"]) if (fd.get(k)) p.set(k, fd.get(k));
      location.hash = `#/${page}?` + p.toString();
    });
  return { params, form: f };
}

async function pageStats(main) {
  const { params, form: f } = rangeQuery("stats");
  main.append(h("h1", t("nav_stats")), f);
  const st = await api("/api/v1/stats?" + params);
  const activeDay = st.activity.days.reduce((m, d) => m.set(d.date, d.active_ms), new Map());
  const dates = st.days.map((d) => d.date);
  const totals = {};
  for (const d of st.days) for (const x of d.totals) { totals[x.category] = totals[x.category] || { events: 0, duration_ms: 0 }; totals[x.category].events += x.events; totals[x.category].duration_ms += x.duration_ms; }
  const perDay = st.days.map((d) => [d.date.slice(5), d.totals.reduce((a, x) => a + x.events, 0)]);
  main.append(h("div.row", h("a.button#export-csv", { href: "/api/v1/stats/export?format=csv&" + params, download: "" }, t("export_csv")), " · ",
      h("a.button#export-xlsx", { href: "/api/v1/stats/export?format=xlsx&" + params, download: "" }, t("export_xlsx"))),
    h("h2", t("active_per_day")), barChart(dates.map((d) => [d.slice(5), Math.round((activeDay.get(d) || 0) / 60000)]), "stats-active-chart"),
    activitySummary(st.activity, "stats"),
    h("h2", t("events_per_day")), barChart(perDay, "stats-chart"),
    h("h2", t("by_category")), h("div#stats-total", table(["category", "count", "duration"], Object.entries(totals).map(([c, x]) => ({ cells: [catName(c), fmtNum(x.events), fmtDur(x.duration_ms)] })))));
}

// The application catalogue and how admins classify each application,
// company-wide or per department (the nearest department's class wins).
async function pageApps(main) {
  const cat = await api("/api/v1/apps");
  const editable = can("manage_policies");
  const classOptions = [...cat.builtin_classes.map((c) => [c, className(c)])];
  const custom = new Set(cat.apps.flatMap((a) => a.classes.map((c) => c.class)).filter((c) => !cat.builtin_classes.includes(c)));
  for (const c of custom) classOptions.push([c, c]);
  main.append(h("h1", t("nav_apps")), h("p.muted", t("apps_help")));
  const rows = cat.apps.map((a) => {
    const company = a.classes.find((c) => c.department_id === 0);
    const perDept = a.classes.filter((c) => c.department_id !== 0).map((c) => h("span.tag", `${deptName(c.department_id)}: ${className(c.class)}`));
    let control = company ? className(company.class) : h("span.muted", `${className(a.suggested)} (${t("suggested")})`);
    if (editable) {
      const dept = select("department", [["0", t("company_wide")], ...S.departments.map((d) => [d.id, d.name])], "0");
      const cls = select("class", [["", t("suggested") + ": " + className(a.suggested)], ...classOptions], company ? company.class : "");
      const customIn = h("input", { name: "custom", placeholder: t("custom_class"), size: 10 });
      const id = "class-" + a.app.replace(/[^A-Za-z0-9_-]/g, "_");
      const save = h("button.secondary#" + id, { on: { click: async () => {
        const chosen = customIn.value.trim() || cls.value || null;
        try { await api(`/api/v1/apps/${encodeURIComponent(a.app)}/class`, { method: "PUT", body: { department_id: dept.value === "0" ? null : Number(dept.value), class: chosen } }); route(); }
        catch (e) { save.after(msg(errText(e.message), true)); }
      } } }, t("save"));
      dept.addEventListener("change", () => { const c = a.classes.find((x) => String(x.department_id) === dept.value); cls.value = c ? c.class : ""; });
      control = h("span.row", dept, cls, customIn, save);
    }
    return { cells: [appLabel(a), a.categories.map((c) => h("span.tag", c)), control, perDept] };
  });
  main.append(h("div#apps-table", table(["application", "categories", "class", "department_classes"], rows)));
}

// Software control: the rules of each policy (edited here) and what the rules did on endpoints.
const RULE_KEYS = ["file", "path", "sha256", "package", "category"];
function ruleText(r) {
  const parts = RULE_KEYS.filter((k) => r[k]).map((k) => `${t("sw_by_" + k)}: ${r[k]}`);
  if (r.schedule) parts.push(`${t("sw_schedule")}: ${r.schedule.days.join(",")} ${r.schedule.from}–${r.schedule.to}`);
  return parts.join(" · ");
}
async function pageSoftware(main) {
  const since = Date.now() - 7 * 86400000;
  const [policies, agents, attempts, packages] = await Promise.all([api("/api/v1/policies"), api("/api/v1/agents"),
    api(`/api/v1/events?category=system&type=software_control&from=${since}&limit=1000`),
    api(`/api/v1/events?category=system&type=package_change&from=${since}&limit=1000`)]);
  const host = (id) => (agents.find((a) => a.id === id) || {}).hostname || "#" + id;
  const edit = can("manage_policies");
  main.append(h("h1", t("nav_software")), h("p.muted", t("software_help")));
  for (const p of policies) {
    const sw = p.doc.software || { mode: "off", rules: [], install: { action: "allow", allowed_users: [] }, untrusted: "allow" };
    const save = async (changes) => { await api("/api/v1/policies/" + p.id, { method: "PUT", body: { doc: { ...p.doc, software: { ...sw, ...changes } } } }); route(); };
    const panel = h("div.panel.software-policy", { "data-policy": p.id }, h("h2", `${p.name} r${p.revision}`),
      h("p", `${t("sw_mode")}: `, h("strong", t("sw_mode_" + sw.mode)), ` · ${t("sw_install")}: ${t("sw_act_" + (sw.install || {}).action || "allow")} · ${t("sw_untrusted")}: ${t("sw_act_" + (sw.untrusted || "allow"))}`),
      table(["sw_rule", "sw_match", "sw_action", ""], (sw.rules || []).map((r, i) => ({ cells: [r.name, h("span.mono", ruleText(r)), t("sw_act_" + (sw.mode === "allow" ? "allow" : r.action || "block")),
        edit ? h("button.secondary", { on: { click: () => save({ rules: sw.rules.filter((_, j) => j !== i) }) } }, t("delete")) : null] }))));
    if (edit) {
      panel.append(form([
        h("label", t("sw_mode"), select("mode", ["off", "deny", "allow"].map((m) => [m, t("sw_mode_" + m)]), sw.mode)),
        h("label", t("sw_install"), select("install", ["allow", "alert", "block"].map((m) => [m, t("sw_act_" + m)]), (sw.install || {}).action || "allow")),
        h("label", t("sw_untrusted"), select("untrusted", ["allow", "alert", "block"].map((m) => [m, t("sw_act_" + m)]), sw.untrusted || "allow"))],
        t("save"), (f) => save({ mode: f.get("mode"), install: { ...(sw.install || {}), action: f.get("install") }, untrusted: f.get("untrusted") })),
      form([
        h("label", t("sw_rule"), h("input", { name: "name", required: true, size: 12 })),
        h("label", t("sw_match"), select("kind", RULE_KEYS.map((k) => [k, t("sw_by_" + k)]))),
        h("label", t("sw_value"), h("input", { name: "value", required: true, size: 24 })),
        h("label", t("sw_action"), select("action", [["block", t("sw_act_block")], ["alert", t("sw_act_alert")]])),
        h("label", t("sw_work_hours"), h("input", { type: "checkbox", name: "work_hours" }))],
        t("sw_add_rule"), (f) => {
          const rule = { name: f.get("name"), [f.get("kind")]: f.get("value").trim(), action: f.get("action") };
          if (f.get("work_hours") === "on") rule.schedule = { days: ["mon", "tue", "wed", "thu", "fri"], from: "09:00", to: "18:00" };
          return save({ rules: [...(sw.rules || []), rule] });
        }));
    }
    main.append(panel);
  }
  main.append(h("h2", t("sw_attempts")), h("div#software-attempts", table(["time", "agent", "employee", "program", "sw_rule", "sw_outcome", "sw_count", "sha256"],
    attempts.events.slice().reverse().map((e) => { const x = e.payload; return { cells: [fmtTime(e.ts_ms), host(e.agent_id), x.user || "", h("span.mono", x.exe), x.rule || t("sw_reason_" + x.reason),
      h("span." + (x.outcome === "blocked" ? "bad" : "muted"), t("sw_" + x.outcome) + (x.mode === "kill" ? ` (${t("sw_mode_kill")})` : "")), fmtNum(x.count), h("span.mono", (x.sha256 || "").slice(0, 12))] }; }))));
  main.append(h("h2", t("sw_packages")), h("div#software-packages", table(["time", "agent", "sw_action", "package", "version"],
    packages.events.slice().reverse().map((e) => ({ cells: [fmtTime(e.ts_ms), host(e.agent_id), t("pkg_" + e.payload.action), e.payload.package, e.payload.version || ""] })))));
}

// Web: visit statistics (who went where, what was blocked), the domain lists
// by category, and each policy's filter settings.
const fmtBytes = (b) => b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : b >= 1e3 ? `${(b / 1e3).toFixed(1)} KB` : `${b} B`;
const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);
async function pageWeb(main) {
  const { params, form: f } = rangeQuery("web");
  main.append(h("h1", t("nav_web")), h("p.muted", t("web_help")), f);
  const st = await api("/api/v1/web/stats?" + params);
  const tally = (x) => [fmtNum(x.visits), x.blocked ? h("span.bad", fmtNum(x.blocked)) : "0", fmtBytes(x.bytes), fmtDur(x.dwell_ms)];
  main.append(h("div.cards", [["web_visits", st.totals.visits], ["web_blocked", st.totals.blocked], ["web_domains", st.distinct_domains]]
      .map(([k, v]) => h("div.card#card-" + k, h("div.num", fmtNum(v)), h("div.label", t(k))))),
    h("h2", t("web_per_day")), barChart(st.days.map((d) => [d.key.slice(5), d.visits + d.blocked]), "web-chart"),
    h("h2", t("web_categories")), h("div#web-categories", table(["web_category", "web_visits", "web_blocked", "web_bytes", "web_dwell"],
      st.categories.map((c) => ({ cells: [c.key === "uncategorised" ? t("web_uncategorised") : c.key, ...tally(c)] })))),
    h("h2", t("web_top_domains")), h("div#web-domains", table(["web_domain", "web_category", "web_visits", "web_blocked", "web_bytes", "web_dwell"],
      st.domains.map((d) => ({ cells: [h("span.mono", d.domain), d.category || "", ...tally(d)] })))),
    h("h2", t("web_people")), h("div#web-people", table(["employee", "web_visits", "web_blocked", "web_bytes", "web_dwell"],
      st.people.map((x) => ({ cells: [x.name, ...tally(x)] })))));
  if (!can("view_policies")) return;
  const [lists, policies] = await Promise.all([api("/api/v1/web/lists"), api("/api/v1/policies")]);
  const edit = can("manage_policies");
  main.append(h("h2", t("web_lists")), h("p.muted", t("web_lists_help")), h("div#web-lists", table(["name", "web_category", "web_rules", "web_errors", "web_source", "time", ""],
    lists.map((l) => ({ cells: [l.name, l.category, fmtNum(l.rules), l.errors ? h("span.bad", fmtNum(l.errors)) : "0",
      l.source_url ? h("span.mono", l.source_url + (l.refresh_hours ? ` (${l.refresh_hours} h)` : "")) : t("web_uploaded"), fmtTime(l.updated_ms),
      edit ? h("button.secondary", { on: { click: async () => { await api("/api/v1/web/lists/" + l.id, { method: "DELETE" }); route(); } } }, t("delete")) : null] })))));
  if (edit) {
    const file = h("input", { type: "file", name: "file" });
    main.append(form([h("label", t("name"), h("input", { name: "name", required: true, size: 14 })),
      h("label", t("web_category"), h("input", { name: "category", required: true, size: 12, placeholder: "gambling" })),
      h("label", t("web_file"), file), h("label", t("web_url"), h("input", { name: "url", size: 28, placeholder: "https://…" })),
      h("label", t("web_refresh"), h("input", { name: "refresh", type: "number", min: 0, size: 4 }))], t("web_upload"), async (f) => {
      const body = { name: f.get("name"), category: f.get("category") };
      if (file.files[0]) body.text = await file.files[0].text(); else body.url = f.get("url");
      if (Number(f.get("refresh")) > 0) body.refresh_hours = Number(f.get("refresh"));
      const r = await api("/api/v1/web/lists", { method: "POST", body });
      setTimeout(route, 1500);
      return h("div", msg(t("web_list_saved", { rules: fmtNum(r.rules), errors: fmtNum(r.errors) }), r.errors > 0),
        r.first_errors.length ? h("pre#web-list-errors", r.first_errors.map((e) => `${e.line}: ${e.message}`).join("\n")) : null);
    }));
  }
  main.append(h("h2", t("web_filter")));
  for (const p of policies) {
    const w = { filter: false, block_answer: "nxdomain", block: [], allow: [], block_categories: [], block_doh: true, full_urls: false, ...(p.doc.web || {}) };
    const panel = h("div.panel.web-policy", { "data-policy": p.id }, h("h2", `${p.name} r${p.revision}`),
      h("p", `${t("web_filter")}: `, h("strong", t(w.filter ? "on" : "off")), ` · ${t("web_categories_blocked")}: ${w.block_categories.map((c) => c.category + (c.schedule ? ` (${c.schedule.from}–${c.schedule.to})` : "")).join(", ") || t("none")}`));
    if (edit) {
      const area = (name, v) => h("textarea", { name, rows: 4, cols: 34, class: "mono" }, v.join("\n"));
      panel.append(form([h("label", t("web_filter_on"), h("input", { type: "checkbox", name: "filter", checked: w.filter })),
        h("label", t("web_answer"), select("answer", [["nxdomain", t("web_answer_nxdomain")], ["block_page", t("web_answer_page")]], w.block_answer)),
        h("label", t("web_block_doh"), h("input", { type: "checkbox", name: "doh", checked: w.block_doh })),
        h("label.wide", t("web_block_rules"), area("block", w.block)), h("label.wide", t("web_allow_rules"), area("allow", w.allow)),
        h("label", t("web_categories_blocked"), h("input", { name: "categories", size: 24, value: w.block_categories.map((c) => c.category).join(", ") })),
        h("label", t("sw_work_hours"), h("input", { type: "checkbox", name: "work_hours", checked: w.block_categories.some((c) => c.schedule) }))],
      t("save"), async (f) => {
        const schedule = f.get("work_hours") === "on" ? { days: ["mon", "tue", "wed", "thu", "fri"], from: "09:00", to: "18:00" } : null;
        const web = { ...w, filter: f.get("filter") === "on", block_answer: f.get("answer"), block_doh: f.get("doh") === "on",
          block: lines(f.get("block")), allow: lines(f.get("allow")),
          block_categories: f.get("categories").split(",").map((c) => c.trim()).filter(Boolean).map((category) => ({ category, schedule })) };
        await api("/api/v1/policies/" + p.id, { method: "PUT", body: { doc: { ...p.doc, web } } });
        setTimeout(route, 1000);
        return msg(t("saved"));
      }));
    }
    main.append(panel);
  }
}

// Text with the character ranges [from, to) marked; ranges count Unicode
// characters (as the API does), not UTF-16 units.
// Screen playback: one employee's day, a display, a scrubber over its
// recorded instants, N× playback, and jumps to the day's activity and alerts.
async function pageScreen(main, arg) {
  const [emp, date] = (arg || "").split("@");
  const pick = select("employee", [["", t("choose_employee")], ...S.employees.map((e) => [e.id, e.name])], emp);
  pick.id = "screen-employee";
  const day = h("input#screen-date", { type: "date", value: date || today() });
  const go = () => { if (pick.value) location.hash = `#/screen/${pick.value}@${day.value}`; };
  pick.addEventListener("change", go); day.addEventListener("change", go);
  main.append(h("h1", t("nav_screen")), h("p.muted", t("screen_help")), h("div.row", h("label", t("employee"), pick), h("label", t("date"), day)));
  if (!emp) return;
  const tl = await api(`/api/v1/employees/${Number(emp)}/timeline?date=${encodeURIComponent(date || today())}`);
  const fr = await api(`/api/v1/screen/frames?employee=${Number(emp)}&from_ms=${tl.day_start_ms}&to_ms=${tl.day_end_ms}`);
  const displays = [...new Set(fr.frames.map((f) => `${f.agent_id} ${f.display}`))];
  main.append(h("h2", `${tl.employee.name} · ${tl.date}`));
  if (!displays.length) { main.append(h("p.muted#screen-none", t("screen_no_frames"))); return; }
  const bytes = fr.frames.reduce((a, f) => a + f.bytes, 0);
  main.append(h("div.cards", [["screen_frames", fmtNum(fr.frames.length) + (fr.truncated ? "+" : "")], ["screen_keys", fmtNum(fr.frames.filter((f) => f.key).length)], ["screen_bytes", fmtBytes(bytes)]]
    .map(([k, v]) => h("div.card#card-" + k, h("div.num", v), h("div.label", t(k))))));
  const which = select("display", displays.map((d) => [d, `#${d.split(" ")[0]} ${d.split(" ").slice(1).join(" ")}`]), displays[0]);
  which.id = "screen-display";
  const img = h("img#screen-image", { alt: t("nav_screen") });
  const when = h("span.mono#screen-time"), why = h("span.muted#screen-reason");
  const scrub = h("input#screen-scrub", { type: "range", min: 0, value: 0 });
  const speed = select("speed", [1, 2, 4, 8, 16, 60].map((n) => [n, n + "×"]), 8);
  speed.id = "screen-speed";
  const play = h("button#screen-play", t("screen_play"));
  let instants = [], at = 0, timer = null;
  const show = (i) => {
    at = Math.max(0, Math.min(instants.length - 1, i));
    const f = instants[at];
    scrub.value = at;
    img.src = `/api/v1/screen/image?agent=${f.agent_id}&display=${encodeURIComponent(f.display)}&at_ms=${f.ts_ms}`;
    when.textContent = `${fmtTime(f.ts_ms)} (${at + 1}/${instants.length})`;
    why.textContent = f.reason + (f.key ? ` · ${t("screen_key")}` : "");
  };
  const stop = () => { clearTimeout(timer); timer = null; play.textContent = t("screen_play"); };
  const step = () => {
    if (at >= instants.length - 1) return stop();
    // Real time divided by the speed, long pauses shortened to 3 s.
    const wait = Math.min(3000, (instants[at + 1].ts_ms - instants[at].ts_ms) / Number(speed.value));
    timer = setTimeout(() => { show(at + 1); step(); }, wait);
  };
  play.addEventListener("click", () => { if (timer) return stop(); play.textContent = t("screen_pause"); step(); });
  scrub.addEventListener("input", () => { stop(); show(Number(scrub.value)); });
  const pickDisplay = () => {
    stop();
    const [agent, ...d] = which.value.split(" ");
    const seen = new Set();
    instants = fr.frames.filter((f) => String(f.agent_id) === agent && f.display === d.join(" ") && !seen.has(f.ts_ms) && seen.add(f.ts_ms));
    scrub.max = instants.length - 1;
    show(0);
  };
  which.addEventListener("change", pickDisplay);
  // Jump to the instant shown at an event's time.
  const jump = (ts) => { stop(); let i = 0; while (i + 1 < instants.length && instants[i + 1].ts_ms <= ts) i++; show(i); };
  const marks = [...tl.events.filter((e) => e.payload.type === "activity" && e.payload.state === "active").map((e) => [e.ts_ms, appName(e.payload)]),
    ...tl.alerts.map((a) => [a.ts_ms, t("alert_" + a.kind)])].sort((a, b) => a[0] - b[0]).slice(0, 300);
  main.append(h("div.panel", h("div.row", h("label", t("screen_display"), which), play, h("label", t("screen_speed"), speed), when, why), scrub, h("div.screen", img)));
  if (marks.length) {
    main.append(h("h2", t("screen_jump")), h("div#screen-marks", table(["time", "detail"], marks.map(([ts, label]) => ({ ts, cells: [fmtTime(ts), label] })), (r) => jump(r.ts))));
  }
  pickDisplay();
}

// ---------- live screens ----------
// Sockets of the page on screen; closed when another page renders, so the
// agent stops streaming (and the employee's notice goes) when nobody looks.
let liveSockets = [];
function closeLive() { for (const w of liveSockets) w.close(); liveSockets = []; }
function liveSocket(path, onPicture, onText) {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") return onText && onText(JSON.parse(ev.data));
    const n = new DataView(ev.data).getUint32(0);
    const head = JSON.parse(new TextDecoder().decode(new Uint8Array(ev.data, 4, n)));
    onPicture(head, new Blob([new Uint8Array(ev.data, 4 + n)], { type: "image/jpeg" }));
  };
  liveSockets.push(ws);
  return ws;
}
// Show the newest picture; one decodes at a time (replacing a loading source
// would abort it, and a stream at 10/s would then never show anything).
function showBlob(img, blob) {
  img.candorNext = blob;
  if (img.candorBusy) return;
  const step = () => {
    const b = img.candorNext;
    img.candorNext = null;
    img.candorBusy = !!b;
    if (!b) return;
    const old = img.src;
    img.onload = img.onerror = () => { if (old.startsWith("blob:")) URL.revokeObjectURL(old); step(); };
    img.src = URL.createObjectURL(b);
  };
  step();
}

async function pageLive(main, arg) {
  const agents = await api("/api/v1/agents");
  const pick = select("agent", [["", t("choose_agent")], ...agents.filter((a) => !a.revoked_ms).map((a) => [a.id, `${a.hostname} (#${a.id})${a.employee_id ? " · " + empName(a.employee_id) : ""}`])], arg);
  pick.id = "live-agent";
  pick.addEventListener("change", () => { if (pick.value) location.hash = "#/live/" + pick.value; });
  main.append(h("h1", t("nav_live")), h("p.muted", t("live_help")), h("div.row", h("label", t("agent"), pick)));
  if (!arg) return;
  const state = h("p.muted#live-state", t("live_connecting"));
  const img = h("img#live-picture", { alt: t("nav_live") });
  main.append(state, h("div.screen", img));
  let count = 0, since = performance.now(), lastLatency = 0;
  const ws = liveSocket(`/api/v1/screen/live/${Number(arg)}`, (head, blob) => {
    showBlob(img, blob);
    count += 1;
    lastLatency = Date.now() - head.captured_ms;
    const secs = (performance.now() - since) / 1000;
    if (secs >= 1) {
      state.textContent = t("live_stats", { fps: (count / secs).toFixed(1), ms: lastLatency, kb: Math.round(head.bytes / 1000) });
      count = 0; since = performance.now();
    }
  });
  ws.onclose = (ev) => { if (liveSockets.includes(ws)) state.replaceChildren(msg(t("live_closed"), true)); };
}

async function pageWall(main) {
  main.append(h("h1", t("nav_wall")), h("p.muted", t("wall_help")));
  const grid = h("div.wall#wall-grid");
  const imgs = new Map();
  main.append(grid);
  // The server sends the tile list again when endpoints join or leave; kept tiles keep their picture.
  liveSocket("/api/v1/screen/wall", (head, blob) => { const img = imgs.get(head.agent); if (img) showBlob(img, blob); }, (tiles) => {
    const shown = new Set(tiles.map((tile) => tile.agent));
    for (const agent of imgs.keys()) if (!shown.has(agent)) imgs.delete(agent);
    grid.replaceChildren();
    if (!tiles.length) grid.append(h("p.muted", t("wall_empty")));
    for (const tile of tiles) {
      if (!imgs.has(tile.agent)) imgs.set(tile.agent, h("img", { alt: tile.hostname }));
      grid.append(h("a.tile#wall-" + tile.agent, { href: "#/live/" + tile.agent }, imgs.get(tile.agent), h("span", `${tile.hostname}${tile.employee_id ? " · " + empName(tile.employee_id) : ""}`)));
    }
  });
}

function marked(text, ranges) {
  const chars = Array.from(text);
  const out = [];
  let at = 0;
  for (const [a, b] of ranges) {
    out.push(chars.slice(at, a).join(""), h("mark", chars.slice(a, b).join("")));
    at = b;
  }
  out.push(chars.slice(at).join(""));
  return h("span.chat-text", out);
}

function chatRow(m, ranges, rooms) {
  const to = m.roomid ? t("chat_room") + " " + ((rooms && rooms[m.roomid]) || m.roomid) : (m.tolist || []).join(", ");
  return { m, cells: [fmtTime(m.ts_ms), m.from, to, h("span.tag", m.msgtype),
    h("span", marked(m.text || "", ranges || []), m.revoked_by ? h("span.tag.bad", t("chat_revoked")) : null)] };
}

async function pageChat(main) {
  main.append(h("h1", t("nav_chat")), h("p.muted", t("chat_help")));
  const results = h("div#chat-results"), conv = h("div#chat-conversation");
  const [contacts, rules] = await Promise.all([api("/api/v1/chat/contacts"), can("view_policies") ? api("/api/v1/dlp/rules") : null]);
  const rooms = Object.fromEntries(contacts.rooms.map((r) => [r.roomid, r.name || r.roomid]));
  const day = (v, end) => v ? new Date(v + "T00:00:00").getTime() + (end ? 86400000 : 0) : null;
  const search = async (f) => {
    const params = new URLSearchParams({ q: f.get("q") || "", limit: "100" });
    for (const k of ["employee", "contact", "type", "order"]) if (f.get(k)) params.set(k, f.get(k));
    const from = day(f.get("from")), to = day(f.get("to"), true);
    if (from) params.set("from", from);
    if (to) params.set("to", to);
    const r = await api("/api/v1/chat/search?" + params);
    conv.replaceChildren();
    results.replaceChildren(h("p.muted#chat-total", t("chat_total", { n: fmtNum(r.total) })),
      table(["time", "chat_from", "chat_to", "chat_type", "chat_text"], r.hits.map((x) => chatRow(x, x.highlights, rooms)), async (row) => {
        const list = await api(`/api/v1/chat/messages/${row.m.id}/conversation`);
        conv.replaceChildren(h("h2", t("chat_conversation")),
          table(["time", "chat_from", "chat_to", "chat_type", "chat_text"], list.map((x) => Object.assign(chatRow(x, null, rooms), { id: x.id }))));
        conv.querySelectorAll("tbody tr").forEach((tr, i) => { if (list[i].id === row.m.id) tr.className = "current"; });
      }));
  };
  const types = ["", "text", "file", "link", "image", "voice", "video", "mixed", "chatrecord", "revoke", "agree", "disagree"];
  main.append(form([
    h("label", t("chat_query"), h("input", { name: "q", size: 24, maxlength: 100 })),
    h("label", t("employee"), select("employee", [["", t("all")], ...S.employees.filter((e) => e.username).map((e) => [e.id, e.name])])),
    h("label", t("chat_contact"), h("input", { name: "contact", size: 14 })),
    h("label", t("chat_type"), select("type", types.map((x) => [x, x || t("all")]))),
    h("label", t("chat_order"), select("order", [["newest", t("chat_order_newest")], ["relevance", t("chat_order_relevance")]])),
    h("label", t("from"), h("input", { type: "date", name: "from" })),
    h("label", t("to"), h("input", { type: "date", name: "to" }))], t("chat_search"), search), results, conv);

  const file = h("input", { type: "file", name: "file", accept: ".jsonl,.json,.csv,.txt", required: true });
  main.append(h("h2", t("chat_import")), h("p.muted", t("chat_import_help")), form([h("label", t("chat_file"), file),
    h("label", t("chat_format"), select("format", [["jsonl", "JSON Lines"], ["csv", "CSV"]]))], t("chat_import"), async (f) => {
    const body = await f.get("file").text();
    const r = await api("/api/v1/chat/import?format=" + f.get("format"), { method: "POST", body, contentType: f.get("format") === "csv" ? "text/csv" : "application/x-ndjson" });
    return h("div", msg(t("chat_imported", { stored: r.stored, duplicates: r.duplicates, errors: r.errors, alerts: r.alerts }), r.errors > 0),
      r.first_errors.length ? h("ul", r.first_errors.map((e) => h("li.mono", e))) : null);
  }));

  // Consent is per conversation: a one-to-one chat's employee, or a room.
  const scope = (s) => s.startsWith("user:") ? t("chat_scope_user", { who: s.slice(5) })
    : s.startsWith("room:") ? t("chat_scope_room", { room: rooms[s.slice(5)] || s.slice(5) }) : t("chat_scope_all");
  main.append(h("h2", t("chat_consent")), h("p.muted", t("chat_consent_help", { n: contacts.hidden.length, m: contacts.hidden_scopes.length })),
    ...(contacts.archived.length ? [h("p.muted#chat-archived", t("chat_archived", { n: contacts.archived.length, list: contacts.archived.join(", ") }))] : []),
    h("div#chat-consents", table(["chat_contact", "chat_scope", "chat_agree", "time", "chat_source"], contacts.consents.map((c) => ({ cells: [c.contact, scope(c.scope),
      h("span." + (c.agree ? "ok" : "bad"), t(c.agree ? "chat_agreed" : "chat_declined")), fmtTime(c.ts_ms), c.source] })))));
  if (rules) {
    const area = h("textarea", { name: "rules", rows: 8 }, JSON.stringify(rules, null, 1));
    main.append(h("h2", t("chat_dlp")), h("p.muted", t("chat_dlp_help")), can("manage_policies")
      ? form([h("label.wide", t("chat_dlp_rules"), area)], t("save"), async (f) => {
        await api("/api/v1/dlp/rules", { method: "PUT", body: f.get("rules") });
        return msg(t("saved"));
      })
      : h("pre.mono", JSON.stringify(rules, null, 1)));
  }
}

function agentStatus(a) {
  return a.revoked_ms ? h("span.bad", t("revoked")) : a.online ? h("span.ok", t("online")) : h("span.bad", t("offline"));
}

async function pageAgents(main, arg) {
  if (arg) return pageAgent(main, Number(arg));
  const agents = await api("/api/v1/agents");
  main.append(h("h1", t("nav_agents")),
    table(["id", "host", "os", "version", "department", "employee", "status", "last_seen", "spool"],
      agents.map((a) => ({ a, cells: [a.id, a.hostname, a.os, a.agent_version, deptName(a.department_id), empName(a.employee_id), agentStatus(a), fmtTime(a.last_seen_ms), fmtNum(a.spool_events)] })),
      (r) => { location.hash = "#/agents/" + r.a.id; }));
  if (can("manage_agents")) {
    const tokens = await api("/api/v1/tokens");
    main.append(h("h2", t("tokens")),
      form([h("label", t("department"), select("department_id", deptOptions(true))), h("label", t("expires"), h("input", { name: "expires", value: "7d", size: 6 }))],
        t("create_token"), async (f) => {
          const body = { expires: f.get("expires") };
          if (f.get("department_id")) body.department_id = Number(f.get("department_id"));
          const r = await api("/api/v1/tokens", { method: "POST", body });
          return h("div", msg(t("token_created")), h("textarea.mono#new-token", { readonly: true }, r.token));
        }),
      table(["id", "department", "expires", "used"], tokens.map((k) => ({ cells: [k.id, deptName(k.department_id), fmtTime(k.expires_ms), k.used_ms ? fmtTime(k.used_ms) + " → #" + k.used_by_agent : t("none")] }))));
  }
}

async function pageAgent(main, id) {
  const { agent: a, offline_gaps } = await api("/api/v1/agents/" + id);
  const eff = await api(`/api/v1/agents/${id}/effective-policy`);
  main.append(h("h1", `${a.hostname} (#${a.id})`),
    h("div.panel", table(["status", "os", "version", "users", "addresses", "last_seen", "notices"],
      [{ cells: [agentStatus(a), a.os, a.agent_version, a.users.join(", "), a.addresses.join(", "), fmtTime(a.last_seen_ms), a.notices.join("; ")] }])),
    h("div.panel", h("strong", t("policy_current") + ": "), eff.current.policy ? `${eff.current.policy.name} r${eff.current.policy.revision} (${eff.current.policy.scope})` : t("none"), " · ",
      h("span", t("collect") + ": "), eff.current.allowed ? catList(eff.current.allowed) : "", " · ",
      eff.applied === eff.current.etag ? h("span.ok", t("up_to_date")) : h("span.bad", t("pending")),
      eff.current.personal ? h("span.tag", " " + t("personal_device")) : null));
  if (can("manage_agents")) {
    main.append(h("h2", t("assign")),
      form([h("label", t("employee"), select("employee_id", [["", t("none")], ...S.employees.map((e) => [e.id, e.name])], a.employee_id)),
            h("label", t("department"), select("department_id", deptOptions(true), a.department_id)),
            h("label", t("personal_device"), select("personal", [["false", t("no")], ["true", t("personal_yes")]], String(a.personal)))], t("save"), async (f) => {
        const num = (k) => f.get(k) ? Number(f.get(k)) : null;
        await api(`/api/v1/agents/${id}/assignment`, { method: "PUT", body: { employee_id: num("employee_id"), department_id: num("department_id"), personal: f.get("personal") === "true" } });
        return msg(t("saved"));
      }));
    if (!a.revoked_ms) main.append(h("h2", t("revoke")), form([h("label", t("revoke_reason"), h("input", { name: "reason", size: 40 }))], t("revoke"), async (f) => {
      if (!confirm(t("revoke_confirm"))) return null;
      await api(`/api/v1/agents/${id}/revoke`, { method: "POST", body: { reason: f.get("reason") } });
      route();
    }));
  }
  main.append(h("h2", t("offline_gaps")), table(["from", "to"], offline_gaps.map((g) => ({ cells: [fmtTime(g.offline_from_ms), fmtTime(g.offline_to_ms)] }))));
}

// Category bit set → names (bit = 1 << code; codes follow candor_proto::Category).
const CATS = ["activity", "process", "web", "screen", "file", "device", "chat", "system"];
const catList = (bits) => CATS.filter((c, i) => bits & (1 << (i + 1))).map(catName).join(", ");

async function pageOrg(main) {
  const tree = h("div.tree");
  const kids = (pid) => S.departments.filter((d) => (d.parent_id ?? null) === pid);
  const visible = new Set(S.departments.map((d) => d.id));
  const roots = S.departments.filter((d) => d.parent_id == null || !visible.has(d.parent_id));
  const branch = (list) => h("ul", list.map((d) => h("li", d.name, " ", h("span.muted", `(${S.employees.filter((e) => e.department_id === d.id).length})`), kids(d.id).length ? branch(kids(d.id)) : null)));
  tree.append(branch(roots));
  main.append(h("h1", t("nav_org")), h("div.panel", h("h2", t("departments")), tree));
  if (can("manage_org")) {
    main.append(h("div.panel",
      form([h("label", t("name"), h("input", { name: "name", required: true })), h("label", t("parent"), select("parent_id", deptOptions(true)))], t("add"), async (f) => {
        await api("/api/v1/departments", { method: "POST", body: { name: f.get("name"), parent_id: f.get("parent_id") ? Number(f.get("parent_id")) : null } });
        await loadOrg(); route();
      })));
  }
  main.append(h("h2", t("employees")), table(["id", "name", "username", "department"], S.employees.map((e) => ({ cells: [e.id, e.name, e.username || t("none"), deptName(e.department_id)] }))));
  if (can("manage_org")) {
    main.append(h("div.panel",
      form([h("label", t("name"), h("input", { name: "name", required: true })), h("label", t("username"), h("input", { name: "username" })),
            h("label", t("department"), select("department_id", deptOptions(true)))], t("add"), async (f) => {
        await api("/api/v1/employees", { method: "POST", body: { name: f.get("name"), username: f.get("username") || null, department_id: f.get("department_id") ? Number(f.get("department_id")) : null } });
        await loadOrg(); route();
      })),
      h("div.panel", h("h2", t("import_csv")), h("p.muted", t("import_help")),
        form([h("textarea#org-csv", { name: "csv", placeholder: "department,name,username" })], t("import_csv"), async (f) => {
          const r = await api("/api/v1/org/import", { method: "POST", body: f.get("csv"), contentType: "text/csv" });
          await loadOrg();
          return msg(t("imported", { d: r.departments_created, c: r.employees_created, u: r.employees_updated }));
        })));
  }
}

async function pagePolicies(main) {
  const [policies, assignments] = await Promise.all([api("/api/v1/policies"), api("/api/v1/assignments")]);
  const pname = (id) => (policies.find((p) => p.id === id) || {}).name || "#" + id;
  main.append(h("h1", t("nav_policies")),
    table(["id", "name", "revision", "collect"], policies.map((p) => ({ p, cells: [p.id, p.name, p.revision, CATS.filter((c) => p.doc.collect[c]).map(catName).join(", ") || t("none")] })),
      can("manage_policies") ? (r) => editPolicy(r.p) : null));
  const editor = h("div.panel#policy-editor");
  function editPolicy(p) {
    editor.replaceChildren(h("h2", p ? t("edit") + ": " + p.name : t("new_policy")),
      form([h("label", t("name"), h("input", { name: "name", required: true, value: p ? p.name : "" })),
            ...CATS.slice(0, 7).map((c) => h("label", catName(c), h("input", { type: "checkbox", name: c, checked: !!(p && p.doc.collect[c]) }))),
            h("label", t("collect_work_hours"), h("input", { type: "checkbox", name: "work_hours", checked: !!(p && p.doc.collect_hours) }))],
        t("save"), async (f) => {
          const doc = { ...(p ? p.doc : {}), collect: Object.fromEntries(CATS.slice(0, 7).map((c) => [c, f.get(c) === "on"])) };
          doc.collect_hours = f.get("work_hours") === "on" ? ((p && p.doc.collect_hours) || { days: ["mon", "tue", "wed", "thu", "fri"], from: "09:00", to: "18:00" }) : null;
          if (p) await api("/api/v1/policies/" + p.id, { method: "PUT", body: { name: f.get("name"), doc } });
          else await api("/api/v1/policies", { method: "POST", body: { name: f.get("name"), doc } });
          route();
        }));
  }
  if (can("manage_policies")) { editPolicy(null); main.append(editor); }
  const targetName = (a) => a.scope === "global" ? t("global") : a.scope === "department" ? deptName(a.target) : "#" + a.target;
  main.append(h("h2", t("assignments")),
    table(["scope", "target", "nav_policies"], assignments.map((a) => ({ cells: [t(a.scope === "global" ? "global" : "scope_" + a.scope), targetName(a), pname(a.policy_id)] }))));
  if (can("manage_policies") && policies.length) {
    main.append(h("div.panel", form([
      h("label", t("scope"), select("scope", [["global", t("global")], ["department", t("scope_department")], ["agent", t("scope_agent")]])),
      h("label", t("target"), h("input", { name: "target", placeholder: "ID", size: 6 })),
      h("label", t("nav_policies"), select("policy_id", policies.map((p) => [p.id, p.name])))], t("assign"), async (f) => {
        await api("/api/v1/assignments", { method: "PUT", body: { scope: f.get("scope"), target: Number(f.get("target") || 0), policy_id: Number(f.get("policy_id")) } });
        route();
      })));
  }
}

const GATED = CATS.slice(0, 7);
const inLang = (b) => (S.lang === "zh-CN" ? b.zh : b.en);

// The monitoring notice in force and a form to publish the next version.
async function noticePanel() {
  const notices = await api("/api/v1/notices");
  const cur = notices[0];
  const out = h("div.panel#notice-panel", h("h2", t("notice")),
    cur ? h("p", t("notice_current", { v: cur.version, by: cur.published_by, at: fmtTime(cur.published_ms) }), " · ", h("strong", inLang(cur.body.title)))
      : h("p.bad", t("notice_none")));
  if (!can("manage_consent")) return out;
  // A text in both languages, prefilled from the version in force.
  const pair = (label, name, b, area) => [["zh", "中文"], ["en", "English"]].map(([l, lang]) => h("label" + (area ? ".wide" : ""), `${label} (${lang})`,
    area ? h("textarea", { name: `${name}_${l}`, rows: 3 }, b ? b[l] : "") : h("input", { name: `${name}_${l}`, size: 40, value: b ? b[l] : "" })));
  const fields = [...pair(t("notice_title"), "notice_title", cur && cur.body.title), ...pair(t("notice_text"), "notice_text", cur && cur.body.text, true),
    ...GATED.flatMap((c) => pair(t("purpose_of", { c: catName(c) }), "p_" + c, cur && cur.body.purposes[c]))];
  out.append(h("details", h("summary", t("notice_publish")), h("p.muted", t("notice_help")), form(fields, t("notice_publish"), async (f) => {
    const two = (k) => ({ zh: f.get(`${k}_zh`) || "", en: f.get(`${k}_en`) || "" });
    const purposes = {};
    for (const c of GATED) { const p = two(`p_${c}`); if (p.zh || p.en) purposes[c] = p; }
    const r = await api("/api/v1/notices", { method: "POST", body: { title: two("notice_title"), text: two("notice_text"), purposes } });
    return msg(t("notice_published", { v: r.version }));
  })));
  return out;
}

async function pageConsent(main, arg) {
  main.append(h("h1", t("nav_consent")), await noticePanel(),
    h("div.row", h("label", t("choose_employee"), (() => {
      const s = select("employee", [["", t("none")], ...S.employees.map((e) => [e.id, e.name])], arg);
      s.addEventListener("change", () => { location.hash = "#/consent/" + s.value; });
      return s;
    })())));
  if (!arg) return;
  const records = await api("/api/v1/consents?employee_id=" + Number(arg));
  const how = (r) => r.scan ? h("a", { href: "/api/v1/consents/scans/" + r.scan, target: "_blank", rel: "noopener" }, t("method_" + r.method) + " · " + t("scan"))
    : t("method_" + r.method) + (r.notice_version ? " · " + t("notice_v", { v: r.notice_version }) : "");
  main.append(h("h2", t("consent_records")),
    h("div#consent-records", table(["category", "status", "method", "note", "recorded_by", "recorded_at"], records.slice().reverse().map((r) => ({ cells: [catName(r.category), r.granted ? h("span.ok", t("granted")) : h("span.bad", t("withdrawn")), how(r), r.note || "", r.recorded_by, fmtTime(r.recorded_ms)] })))));
  if (can("manage_consent")) {
    const scan = h("input", { type: "file", name: "scan", accept: ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg" });
    main.append(h("div.panel", h("h2", t("record_consent")), h("p.muted", t("record_consent_help")), form([
      h("label", t("category"), select("category", GATED.map((c) => [c, catName(c)]))),
      h("label", t("status"), select("granted", [["true", t("grant")], ["false", t("withdraw")]])),
      h("label", t("method"), select("method", [["paper", t("method_paper")], ["api", t("method_api")]])),
      h("label", t("scan"), scan),
      h("label", t("note"), h("input", { name: "note", size: 30 }))], t("save"), async (f) => {
        let key = null;
        const file = f.get("scan");
        if (f.get("method") === "paper") {
          if (!file || !file.size) throw new Error(t("scan_needed"));
          key = (await api("/api/v1/consents/scans", { method: "POST", body: file, contentType: file.type || "application/octet-stream" })).scan;
        }
        await api("/api/v1/consents", { method: "POST", body: { employee_id: Number(arg), category: f.get("category"), granted: f.get("granted") === "true", method: f.get("method"), note: f.get("note") || null, scan: key } });
        route();
      })));
  }
}

async function pageEvents(main) {
  const agents = await api("/api/v1/agents");
  const results = h("div");
  let cursor = null, query = "";
  async function load(more) {
    const page = await api("/api/v1/events?" + query + (more && cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    cursor = page.next_cursor;
    if (!more) results.replaceChildren();
    results.append(table(["time", "agent", "category", "duration", "payload"], page.events.map((e) => ({ cells: [fmtTime(e.ts_ms), "#" + e.agent_id, catName(e.category), e.duration_ms ?? "", h("code", JSON.stringify(e.payload))] }))));
    if (cursor) results.append(h("button.secondary", { on: { click: (ev) => { ev.target.remove(); load(true); } } }, t("more")));
  }
  main.append(h("h1", t("nav_events")),
    form([h("label", t("agent"), select("agent", [["", t("any")], ...agents.map((a) => [a.id, `${a.hostname} (#${a.id})`])])),
          h("label", t("category"), select("category", [["", t("any")], ...CATS.map((c) => [c, catName(c)])])),
          h("label", t("from"), h("input", { type: "datetime-local", name: "from" })), h("label", t("to"), h("input", { type: "datetime-local", name: "to" }))],
      t("search"), async (f) => {
        const q = new URLSearchParams({ limit: "50" });
        if (f.get("agent")) q.set("agent", f.get("agent"));
        if (f.get("category")) q.set("category", f.get("category"));
        if (f.get("from")) q.set("from", Date.parse(f.get("from")));
        if (f.get("to")) q.set("to", Date.parse(f.get("to")));
        query = q.toString();
        await load(false);
      }), results);
}

// The employee reads the notice in force and accepts or declines each
// category; nothing is preselected until they have answered this version.
async function pageNotice(main) {
  const n = await api("/api/v1/portal/notice");
  main.append(h("h1", t("nav_notice")));
  if (!n.notice) return main.append(h("p.muted", t("notice_none_yet")));
  const cur = n.notice;
  const done = n.answered === cur.version;
  main.append(h("div.panel",
    h("h2", inLang(cur.body.title)), h("p.muted", t("notice_current", { v: cur.version, by: cur.published_by, at: fmtTime(cur.published_ms) })),
    h("p.chat-text", inLang(cur.body.text))),
  h("p" + (done ? ".ok" : ".bad") + "#notice-state", t(done ? "notice_answered" : "notice_please")));
  const choice = (c, value, label) => h("label.inline", h("input", { type: "radio", name: c, value, required: true, checked: done && n.decisions[c] === (value === "true") }), label);
  const rows = GATED.filter((c) => cur.body.purposes[c]).map((c) => h("fieldset.panel#notice-" + c,
    h("legend", h("strong", catName(c))), h("p", inLang(cur.body.purposes[c])), choice(c, "true", t("accept")), choice(c, "false", t("decline"))));
  main.append(form(h("div.wide", rows), t("notice_submit"), async (f) => {
    const decisions = {};
    for (const c of GATED) if (cur.body.purposes[c]) decisions[c] = f.get(c) === "true";
    await api("/api/v1/portal/notice", { method: "POST", body: { version: cur.version, decisions } });
    route();
  }));
}

// The employee's own portal: their day as admins see it, their consents, an export of everything.
async function pageMyData(main, arg) {
  const day = h("input#mydata-date", { type: "date", value: arg || today() });
  day.addEventListener("change", () => { location.hash = "#/mydata/" + day.value; });
  const d = await api("/api/v1/portal/day?date=" + encodeURIComponent(arg || today()));
  // Their screen pictures, composed by the server as admins see them; the newest is shown.
  const frames = d.screen_frames;
  const pic = h("img#mydata-picture", { alt: t("screen_pictures") });
  const show = (f) => { pic.src = `/api/v1/portal/screen/image?agent=${f.agent_id}&display=${encodeURIComponent(f.display)}&at_ms=${f.ts_ms}`; };
  if (frames.length) show(frames[frames.length - 1]);
  main.append(h("h1", t("nav_mydata")), h("p.muted", t("mydata_help")),
    h("div.row", h("label", t("date"), day), h("a.button#export-mine", { href: "/api/v1/portal/export", download: "" }, t("export_mine"))),
    h("h2", `${d.employee.name} · ${d.date}`), dayStrip(d), activitySummary(d.activity, "mydata"),
    h("h2", t("events") + ` (${fmtNum(d.events.length)}${d.truncated ? "+" : ""})`),
    table(["time", "category", "duration", "payload"], d.events.slice(0, 500).map((e) => ({ cells: [fmtTime(e.ts_ms), catName(e.category), e.duration_ms ? fmtDur(e.duration_ms) : "", describe(e.payload)] }))),
    h("h2", t("screen_pictures") + ` (${fmtNum(frames.length)})`), frames.length ? h("div.screen#mydata-screen", h("div.row", frames.slice(-200).map((f) =>
      h("a.tag", { on: { click: () => show(f) } }, fmtTime(f.ts_ms)))), pic) : h("p.muted", t("screen_no_frames")),
    h("h2", t("nav_alerts")), h("div#mydata-alerts", alertTable(d.alerts, false)),
    h("h2", t("consent_records")),
    table(["category", "status", "method", "recorded_at"], d.consents.map((c) => ({ cells: [catName(c.category), c.granted ? t("granted") : t("withdrawn"), t("method_" + c.method), fmtTime(c.recorded_ms)] }))));
}

async function pageViews(main) {
  const v = await api("/api/v1/portal/views");
  main.append(h("h1", t("nav_views")), h("p.muted", t("views_help")),
    h("div#views-table", table(["time", "actor", "action", "target"], v.map((e) => ({ cells: [fmtTime(e.ts_ms), e.actor, e.action, h("code", e.target)] })))));
}

// Retention periods, legal holds (placing and releasing one is access-logged) and the purge log.
async function pageRetention(main) {
  const r = await api("/api/v1/retention");
  const cats = ["activity", "process", "web", "screen", "file", "device", "chat", "system"];
  main.append(h("h1", t("nav_retention")), h("p.muted", t("retention_help")),
    h("div#retention-periods", table(["category", "kept_for"], cats.map((c) => ({ cells: [catName(c), r.periods[c + "_days"] ? t("days_n", { n: r.periods[c + "_days"] }) : t("kept_forever")] })))));
  const edit = can("manage_consent");
  main.append(h("h2", t("legal_holds")), h("div#retention-holds", table(["employee", "reason", "recorded_by", "recorded_at", ""], r.holds.map((x) => ({ cells: [empName(x.employee_id), x.reason, x.set_by, fmtTime(x.set_ms),
    edit ? h("button.secondary", { on: { click: async () => { await api(`/api/v1/employees/${x.employee_id}/legal-hold`, { method: "DELETE" }); route(); } } }, t("release")) : null] })))));
  if (edit) {
    main.append(form([h("label", t("employee"), select("employee", S.employees.map((e) => [e.id, e.name]))), h("label", t("reason"), h("input", { name: "reason", required: true, size: 40 }))],
      t("place_hold"), async (fd) => { await api(`/api/v1/employees/${Number(fd.get("employee"))}/legal-hold`, { method: "PUT", body: { reason: fd.get("reason") } }); route(); }));
  }
  main.append(h("h2", t("purge_log")), h("div#retention-purges", table(["time", "category", "cutoff", "events", "rollups", "held_endpoints"], r.purges.map((p) => ({ cells: [fmtTime(p.ts_ms), catName(p.category), fmtTime(p.cutoff_ms), fmtNum(p.events), fmtNum(p.rollups), fmtNum(p.held_endpoints)] })))));
  if (edit) {
    main.append(h("button#purge-now", { on: { click: async () => { await api("/api/v1/retention/purge", { method: "POST", body: {} }); route(); } } }, t("purge_now")));
  }
}

async function pageAccess(main) {
  const entries = await api("/api/v1/access-log?limit=200");
  main.append(h("h1", t("access_log")), table(["time", "actor", "action", "target", "hash"], entries.map((e) => ({ cells: [fmtTime(e.ts_ms), e.actor, e.action, e.target, h("code", e.hash.slice(0, 16))] }))));
}

async function pageAdmins(main) {
  const admins = await api("/api/v1/admins");
  const roles = ["system_admin", "security_admin", "auditor", "department_manager", "employee"];
  const state = (a) => a.disabled ? h("span.bad", t("disabled")) : a.locked_until_ms > Date.now() ? h("span.bad", t("locked")) : h("span.ok", t("active"));
  main.append(h("h1", t("admins")),
    table(["id", "username", "role", "departments", "status", ""], admins.map((a) => ({ cells: [a.id, a.username, t("role_" + a.role), a.departments.map(deptName).join(", "), state(a),
      h("span", a.id === S.me.id ? null : h("button.secondary", { on: { click: async () => { await api("/api/v1/admins/" + a.id, { method: "PUT", body: { disabled: !a.disabled } }); route(); } } }, a.disabled ? t("enable") : t("disable")),
        a.locked_until_ms > Date.now() ? h("button.secondary", { on: { click: async () => { await api("/api/v1/admins/" + a.id, { method: "PUT", body: { unlock: true } }); route(); } } }, t("unlock")) : null)] }))),
    h("div.panel", h("h2", t("create_admin")), form([
      h("label", t("username"), h("input", { name: "username", required: true })),
      h("label", t("role"), select("role", roles.map((r) => [r, t("role_" + r)]))),
      h("label", t("departments"), h("select", { name: "departments", multiple: true, size: 3 }, S.departments.map((d) => h("option", { value: d.id }, d.name))))],
      t("create_admin"), async (f) => {
        const r = await api("/api/v1/admins", { method: "POST", body: { username: f.get("username"), role: f.get("role"), departments: f.getAll("departments").map(Number) } });
        setTimeout(route, 15000);
        return h("div", msg(t("admin_created", { u: f.get("username") })), h("code#new-admin-password", r.password));
      })));
}

async function pageAccount(main) {
  main.append(h("h1", t("nav_account")), h("div.panel", h("p", `${S.me.username} · ${t("role_" + S.me.role)}`),
    h("p", S.me.totp_enabled ? t("totp_on") : t("totp_off"))));
  const box = h("div.panel");
  if (!S.me.totp_enabled) {
    box.append(h("button", { on: { click: async () => {
      const s = await api("/api/v1/auth/totp/setup", { method: "POST", body: {} });
      box.replaceChildren(h("p", t("totp_secret")), h("code", s.secret), h("p.muted.mono", s.otpauth_url),
        form([h("label", t("totp"), h("input", { name: "code", inputmode: "numeric", size: 8 }))], t("confirm"), async (f) => {
          await api("/api/v1/auth/totp", { method: "PUT", body: { secret: s.secret, code: f.get("code") } });
          await loadMe(); route();
        }));
    } } }, t("totp_setup")));
  } else {
    box.append(form([h("label", t("totp"), h("input", { name: "code", size: 8 }))], t("turn_off"), async (f) => {
      await api("/api/v1/auth/totp", { method: "PUT", body: { secret: null, code: f.get("code") } });
      await loadMe(); route();
    }));
  }
  main.append(box);
}

// ---------- shell ----------

async function loadMe() {
  const me = await api("/api/v1/auth/me", { noRedirect: true });
  S.me = me.admin; S.csrf = me.csrf || S.csrf; S.tz = me.timezone; S.lang = me.admin.lang; S.perms = new Set(me.permissions);
  document.documentElement.lang = S.lang;
}

async function loadOrg() {
  if (!can("view_org")) return;
  [S.departments, S.employees] = await Promise.all([api("/api/v1/departments"), api("/api/v1/employees")]);
}

function renderLogin() {
  const err = h("div");
  const totp = h("label#totp-field", { hidden: true }, t("totp"), h("input", { name: "totp", inputmode: "numeric", autocomplete: "one-time-code" }));
  const f = h("form.login#login-form", h("h1", "Candor"),
    h("label", t("username"), h("input", { name: "username", autocomplete: "username", required: true })),
    h("label", t("password"), h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    totp, h("button", { type: "submit" }, t("login")), err);
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.replaceChildren();
    const d = new FormData(f);
    const body = { username: d.get("username"), password: d.get("password") };
    if (!totp.hidden) body.totp = d.get("totp");
    try {
      const r = await api("/api/v1/auth/login", { method: "POST", body, noRedirect: true });
      S.csrf = r.csrf;
      await start();
    } catch (ex) {
      if (ex.message === "totp required") totp.hidden = false; else err.append(msg(errText(ex.message), true));
    }
  });
  document.getElementById("app").replaceChildren(f);
}

function render() {
  closeLive();
  if (!S.me) return renderLogin();
  const [name, arg] = (location.hash.replace(/^#\//, "").split("?")[0] || "dashboard").split("/");
  const pages = PAGES.filter(([, , perm]) => !perm || can(perm));
  const page = pages.find(([n]) => n === name) || pages[0];
  const main = h("main#page-" + page[0]);
  const lang = select("lang", [["zh-CN", "中文"], ["en", "English"]], S.lang);
  lang.id = "lang";
  lang.addEventListener("change", async () => { await api("/api/v1/auth/me", { method: "PUT", body: { lang: lang.value } }); S.lang = lang.value; document.documentElement.lang = S.lang; render(); });
  const shell = h("div",
    h("header", h("span.brand", "Candor"), h("span.spacer"), h("span", `${S.me.username} · ${t("role_" + S.me.role)}`), lang,
      h("button#logout", { on: { click: async () => { await api("/api/v1/auth/logout", { method: "POST", body: {} }); S.me = null; S.csrf = null; render(); } } }, t("logout"))),
    h("div.layout", h("nav", pages.map(([n, label]) => h("a" + (n === page[0] ? ".active" : ""), { href: "#/" + n, id: "nav-" + n }, t(label)))), main));
  document.getElementById("app").replaceChildren(shell);
  main.append(h("p.muted", t("loading")));
  const fill = h("div");
  page[3](fill, arg).then(() => main.replaceChildren(...fill.childNodes), (e) => { if (e.message !== "401") main.replaceChildren(msg(errText(e.message), true)); });
}
const route = render;

async function start() {
  await loadMe();
  await loadOrg();
  render();
}

window.addEventListener("hashchange", () => { if (S.me) render(); });
document.addEventListener("DOMContentLoaded", () => { start().catch(() => renderLogin()); });
