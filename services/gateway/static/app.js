// Kaowu operator dashboard: plain JS, no build step, nothing loaded from elsewhere.
// The token from the sign-in form lives in sessionStorage (this tab only); the figures
// come from GET /api/ops/dashboard every 5 s. A source that is down shows "unavailable".
// A wall screen stays signed in: before the token expires (on the gateway's clock, which
// every answer's "now" tells) the page trades it for a fresh one (POST /api/token/renew);
// only a refused renewal, or a token already expired, brings the sign-in form back. When
// the figures stop coming, the page says since when they are stale.
// Charts are plain SVG drawn here (no library).
// One sign-in: opened from the site's menu in the same tab, the page uses the site's own
// session (sessionStorage "kaowu.session", same origin and tab) when it is an operator's or
// the authority's, renews it in place (so the site stays signed in too) and signs out of
// both; its own form (and keys) serve a page opened directly.
"use strict";

const TOKEN_KEY = "kaowu.dashboard.token";
const EXPIRES_KEY = "kaowu.dashboard.expires_at"; // seconds since the epoch (gateway clock)
const LIFETIME_KEY = "kaowu.dashboard.lifetime"; // seconds a token lives
const REFRESH_MS = 5000;
const STALE_MS = 2.5 * REFRESH_MS; // no fresh figures for this long: say so
const UNAVAILABLE = "unavailable 不可用";
let deadlineAt = null; // ms since the epoch, from the server's "seconds" at fetch time
let windowTimes = []; // [{name, closesAt | opensAt (ms, local clock)}] for the countdowns
let timer = null;
let inFlight = false; // a slow refresh (a service timing out) is not stacked on
let renewing = false;
let serverOffset = 0; // gateway clock minus this browser's, ms (from each answer's "now")
let lastGood = null; // Date.now() of the last figures shown
let renewProblem = "";

const $ = (sel) => document.querySelector(sel);

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function setFigure(name, value) {
  for (const node of document.querySelectorAll(`[data-figure="${name}"]`)) {
    const missing = value === null || value === undefined;
    node.textContent = missing ? UNAVAILABLE : String(value);
    node.classList.toggle("unavailable", missing);
  }
}

const SITE_KEY = "kaowu.session"; // the site's sign-in (web/src/api.js)
const DASHBOARD_ROLES = ["operator", "authority"];

/** The site's sign-in in this tab, if it is one the dashboard serves (else null). */
function siteSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SITE_KEY) || "null");
    return s && s.token && s.account && DASHBOARD_ROLES.includes(s.account.role) ? s : null;
  } catch (e) { return null; }
}

/** The dashboard's own sign-in first, else the site's. */
function token() {
  const own = sessionStorage.getItem(TOKEN_KEY);
  if (own) return own;
  const site = siteSession();
  return site ? site.token : null;
}

function keep(answer) {
  if (answer.expires_in) sessionStorage.setItem(LIFETIME_KEY, String(answer.expires_in));
  const site = !sessionStorage.getItem(TOKEN_KEY) && siteSession();
  if (site) {
    // renewed in the site's own record, its renew_at as api.js reckons it (renewAt)
    const renewAt = Date.now() + Math.max(answer.expires_in - 120, 30) * 1000;
    sessionStorage.setItem(SITE_KEY, JSON.stringify(
      {...site, token: answer.token, expires_at: answer.expires_at, renew_at: renewAt}));
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, answer.token);
  sessionStorage.setItem(EXPIRES_KEY, String(answer.expires_at));
}

/** Milliseconds the token has left, on the gateway's clock (null: not known). */
function tokenLeft() {
  const site = !sessionStorage.getItem(TOKEN_KEY) && siteSession();
  const expires = site ? Number(site.expires_at) : Number(sessionStorage.getItem(EXPIRES_KEY));
  if (!expires) return null;
  return expires * 1000 - (Date.now() + serverOffset);
}

/** Renew when half the token's life is left (at most 2 minutes before it ends). */
async function renewIfDue() {
  const left = tokenLeft();
  const lifetime = Number(sessionStorage.getItem(LIFETIME_KEY)) || 900;
  if (left === null || renewing || left > Math.min(120000, (lifetime * 1000) / 2)) return;
  renewing = true;
  try {
    const response = await fetch("/api/token/renew", {
      method: "POST", headers: {Authorization: `Bearer ${token()}`}});
    const answer = await response.json().catch(() => ({}));
    if (response.ok && answer.token) {
      keep(answer);
      renewProblem = "";
      document.body.dataset.renewed = String(Number(document.body.dataset.renewed || 0) + 1);
    } else if (response.status === 401) {
      showLogin("Your sign-in has expired; sign in again. 登录已过期，请重新登录。");
    } else {
      renewProblem = `续期失败 Renewal failed (${response.status}); retrying`;
    }
  } catch (e) {
    renewProblem = "续期失败 Renewal failed (no answer); retrying";
  } finally {
    renewing = false;
  }
}

function showLogin(message) {
  if (!sessionStorage.getItem(TOKEN_KEY) && siteSession()) sessionStorage.removeItem(SITE_KEY);
  for (const key of [TOKEN_KEY, EXPIRES_KEY, LIFETIME_KEY]) sessionStorage.removeItem(key);
  lastGood = null;
  if (timer) { clearInterval(timer); timer = null; }
  $("#board").hidden = true;
  $("#who").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

async function signIn(event) {
  event.preventDefault();
  $("#login-error").textContent = "";
  let answer;
  try {
    const response = await fetch("/api/login", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({username: $("#login-username").value,
                            password: $("#login-password").value}),
    });
    answer = await response.json();
    if (!response.ok) { $("#login-error").textContent = answer.error.message; return; }
  } catch (e) {
    $("#login-error").textContent = "The gateway does not answer.";
    return;
  }
  if (!["operator", "authority"].includes(answer.account.role)) {
    $("#login-error").textContent = "The dashboard is for operators and the exam authority.";
    return;
  }
  serverOffset = (answer.expires_at - answer.expires_in) * 1000 - Date.now();
  keep(answer);
  $("#login-password").value = "";
  start(answer.account.name);
}

function start(name) {
  $("#login").hidden = true;
  $("#board").hidden = false;
  $("#who").hidden = false;
  if (name) $("#who-name").textContent = name;
  refresh();
  if (!timer) timer = setInterval(refresh, REFRESH_MS);
}

function countsTable(id, section) {
  const body = $(`#${id} tbody`);
  body.replaceChildren();
  if (!section.available) {
    const row = el("tr");
    row.append(el("td", UNAVAILABLE, {"class": "unavailable", "data-figure": `${id}.status`,
                                      "colspan": "2", "title": section.error || ""}));
    body.append(row);
    return;
  }
  const counts = section.counts || {};
  const keys = Object.keys(counts).filter((k) => typeof counts[k] !== "object").sort();
  if (!keys.length) {
    const row = el("tr");
    row.append(el("td", "—", {"colspan": "2"}));
    body.append(row);
  }
  for (const key of keys) {
    const row = el("tr");
    row.append(el("th", key), el("td", counts[key], {"data-figure": `${id}.${key}`}));
    body.append(row);
  }
}

function render(data) {
  const s = data.session;
  setFigure("session.name", s ? s.name : "—");
  setFigure("session.id", s ? s.session_id : "—");
  setFigure("session.phase", s ? s.phase_label : "—");
  setFigure("session.phase_code", s ? (s.phase || "") : "");
  const d = s && s.deadline;
  setFigure("deadline.label", d ? d.label : "—");
  setFigure("deadline.kind", d ? d.kind : "");
  setFigure("deadline.at", d ? d.at : "");
  deadlineAt = d ? Date.now() + d.seconds * 1000 : null;
  tick();

  const select = $("#session-select");
  const chosen = s ? s.session_id : "";
  select.replaceChildren(...data.sessions.map((x) => {
    const o = el("option", `${x.name || x.session_id}`, {value: x.session_id});
    if (x.session_id === chosen) o.selected = true;
    return o;
  }));

  const funnel = $("#funnel tbody");
  funnel.replaceChildren();
  const top = Math.max(1, ...data.funnel.map((f) => (f.available ? f.value : 0)));
  for (const step of data.funnel) {
    const row = el("tr");
    const cell = el("td", step.available ? step.value : UNAVAILABLE,
                    {"data-figure": `funnel.${step.key}`});
    if (!step.available) cell.classList.add("unavailable");
    const pct = (x) => (x === null || x === undefined ? "—" : `${x}%`);
    row.append(el("th", step.label), cell,
               holding(bar(step.available ? step.value : 0, top, step.label)),
               el("td", `${pct(step.rate)} · ${pct(step.of_first)}`,
                  {"data-figure": `funnel.${step.key}.rate`}));
    funnel.append(row);
  }

  renderWindows(s ? s.windows || [] : []);
  renderArrivals(data.arrivals);

  for (const id of ["applications", "cases", "enquiries", "admission", "scoring",
                    "certificates", "notifications"]) {
    countsTable(id, data[id]);
  }

  const queues = $("#queues tbody");
  queues.replaceChildren();
  const longest = Math.max(1, ...data.manual_queues.map((q) => q.waiting || 0));
  for (const q of data.manual_queues) {
    const row = el("tr");
    const cell = el("td", q.available ? q.waiting : UNAVAILABLE, {"data-figure": `queue.${q.code}`});
    if (!q.available) cell.classList.add("unavailable");
    row.append(el("th", `${q.code} ${q.name}`), cell,
               holding(bar(q.waiting || 0, longest, q.name)),
               el("td", q.oldest_wait_s === null || q.oldest_wait_s === undefined ? "—"
                  : duration(q.oldest_wait_s), {"data-figure": `queue.${q.code}.oldest`}));
    queues.append(row);
  }

  const services = $("#services tbody");
  services.replaceChildren();
  for (const [name, svc] of Object.entries(data.services).sort()) {
    const row = el("tr", null, {"data-service": name});
    const state = el("td", svc.up ? "up 正常" : UNAVAILABLE, {"data-figure": `service.${name}`});
    state.classList.add(svc.up ? "up" : "unavailable");
    if (!svc.up) state.title = svc.error || "";
    const lags = svc.up ? svc.consumers.map((c) =>
      `${c.upstream}: ${c.lag === null ? "?" : c.lag}`).join(", ") || "—" : "—";
    row.append(el("th", name), state,
               el("td", svc.up ? svc.head : "—", {"data-figure": `service.${name}.head`}),
               el("td", svc.up ? svc.relay_lag : "—", {"data-figure": `service.${name}.relay_lag`}),
               el("td", lags, {"data-figure": `service.${name}.consumer_lag`}));
    services.append(row);
  }
  $("#updated").textContent = `更新于 Updated ${shanghai(data.now)} (北京时间 Beijing time)`;
  $("#updated").classList.remove("error");
  lastGood = Date.now();
  checkStale();
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
}

const SVG = "http://www.w3.org/2000/svg";

function holding(child) {
  const td = el("td");
  td.append(child);
  return td;
}

/** A horizontal bar: `value` of `max`, as SVG (presentation attributes only: the page's
 * Content-Security-Policy allows no inline styles). */
function bar(value, max, label) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "bar");
  svg.setAttribute("viewBox", "0 0 100 10");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${label}: ${value}`);
  const track = document.createElementNS(SVG, "rect");
  track.setAttribute("class", "track");
  track.setAttribute("width", "100");
  track.setAttribute("height", "10");
  const fill = document.createElementNS(SVG, "rect");
  fill.setAttribute("class", "fill");
  fill.setAttribute("width", String(max > 0 ? Math.max(0, Math.min(100, (100 * value) / max)) : 0));
  fill.setAttribute("height", "10");
  svg.append(track, fill);
  return svg;
}

/** Arrivals per hour: for each hour a group of bars (registrations, applications,
 * confirmations), scaled to the busiest hour; each bar says its figure (data-value, its
 * title); the legend gives each series' total over the hours shown. */
function renderArrivals(arrivals) {
  const legend = $("#arrivals .legend");
  const chart = $("#arrivals .chart");
  legend.replaceChildren();
  chart.replaceChildren();
  if (!arrivals) { setFigure("arrivals.range", "—"); return; }
  for (const s of arrivals.series) {
    const total = arrivals.totals[s.key];
    legend.append(el("span", null, {"class": `swatch s-${s.key}`}), el("span", `${s.label}: `),
                  el("strong", s.available ? total : UNAVAILABLE,
                     {"data-figure": `arrivals.${s.key}`,
                      "class": s.available ? "" : "unavailable"}));
  }
  const hours = arrivals.hours;
  const W = 1000, H = 200, left = 30, bottom = 28, top = 10;
  const peak = Math.max(1, arrivals.peak);
  const slot = (W - left) / Math.max(1, hours.length);
  const barWidth = Math.max(0.5, (slot * 0.8) / arrivals.series.length);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "arrivals");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "每小时到达 Arrivals per hour");
  const svgEl = (tag, attrs, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const base = H - bottom;
  svg.append(svgEl("line", {"class": "axis", x1: left, y1: base, x2: W, y2: base}),
             svgEl("line", {"class": "axis", x1: left, y1: top, x2: left, y2: base}),
             svgEl("text", {x: 2, y: top + 8}, String(arrivals.peak)),
             svgEl("text", {x: 2, y: base}, "0"));
  const every = Math.max(1, Math.ceil(hours.length / 12)); // at most a dozen hour labels
  hours.forEach((h, i) => {
    const x0 = left + i * slot + slot * 0.1;
    arrivals.series.forEach((s, j) => {
      const value = h[s.key];
      if (value === null || value === undefined) return;
      const height = ((base - top) * value) / peak;
      const rect = svgEl("rect", {"class": `s-${s.key}`, x: x0 + j * barWidth, y: base - height,
                                  width: barWidth, height, "data-hour": h.hour,
                                  "data-series": s.key, "data-value": value});
      rect.append(svgEl("title", {}, `${h.label} ${s.label}: ${value}`));
      svg.append(rect);
    });
    if (i % every === 0) svg.append(svgEl("text", {x: x0, y: H - 10}, h.label));
  });
  chart.append(svg);
  const earlier = arrivals.series.filter((s) => arrivals.earlier[s.key])
    .map((s) => `${s.label} ${arrivals.earlier[s.key]}`).join(", ");
  const range = hours.length
    ? `${hours[0].label} – ${hours[hours.length - 1].label}` : "—";
  setFigure("arrivals.range", range + (earlier ? ` · 此前 before: ${earlier}` : ""));
}

const STATES = {open: "进行中 open", upcoming: "未开始 upcoming", closed: "已截止 closed"};

function renderWindows(windows) {
  const body = $("#windows tbody");
  body.replaceChildren();
  windowTimes = [];
  const now = Date.now();
  for (const w of windows) {
    const row = el("tr", null, {"data-window": w.window});
    const state = el("td", STATES[w.state] || w.state, {"data-figure": `window.${w.window}.state`,
                                                       "class": `state-${w.state}`});
    row.append(el("th", `${w.label} ${w.window}`), state, el("td", shanghai(w.start)),
               el("td", shanghai(w.end)),
               el("td", "—", {"data-figure": `window.${w.window}.countdown`}));
    body.append(row);
    windowTimes.push({name: w.window,
                      closesAt: w.closes_in === null ? null : now + w.closes_in * 1000,
                      opensAt: w.opens_in === null ? null : now + w.opens_in * 1000});
  }
  tickWindows();
}

function tickWindows() {
  const now = Date.now();
  for (const w of windowTimes) {
    let text = "—";
    if (w.closesAt !== null) text = `${duration(Math.max(0, (w.closesAt - now) / 1000))} 后截止 to close`;
    else if (w.opensAt !== null) text = `${duration(Math.max(0, (w.opensAt - now) / 1000))} 后开始 to open`;
    setFigure(`window.${w.name}.countdown`, text);
  }
}

/** "2d 03:04:05" */
function duration(seconds) {
  let left = Math.round(seconds);
  const days = Math.floor(left / 86400); left -= days * 86400;
  const h = Math.floor(left / 3600); left -= h * 3600;
  const m = Math.floor(left / 60); const sec = left - m * 60;
  const pad = (n) => String(n).padStart(2, "0");
  return `${days}d ${pad(h)}:${pad(m)}:${pad(sec)}`;
}

const SHANGHAI = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"});

function shanghai(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  const p = {};
  for (const part of SHANGHAI.formatToParts(d)) p[part.type] = part.value;
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** Say when the figures are stale (no fresh ones for a while), and why if known. */
function checkStale() {
  const banner = $("#stale");
  const old = lastGood !== null && Date.now() - lastGood > STALE_MS;
  const text = old
    ? `数据已过时 Data stale: 最后更新 last updated ${Math.round((Date.now() - lastGood) / 1000)} s ago`
      + (renewProblem ? ` · ${renewProblem}` : "")
    : renewProblem;
  banner.textContent = text;
  banner.hidden = !text;
  document.body.classList.toggle("is-stale", old);
  document.body.dataset.stale = old ? "true" : "false";
}

function tick() {
  tickWindows();
  if (token()) {
    checkStale();
    renewIfDue(); // every second, not only with the figures: a slow refresh must not cost the sign-in
  }
  if (deadlineAt === null) { setFigure("deadline.countdown", "—"); return; }
  setFigure("deadline.countdown", duration(Math.max(0, (deadlineAt - Date.now()) / 1000)));
}

async function refresh() {
  const t = token();
  if (!t) { showLogin(); return; }
  if (inFlight) return;
  inFlight = true;
  try {
    await load(t);
  } finally { inFlight = false; }
}

async function load(t) {
  const chosen = $("#session-select").value;
  const url = "/api/ops/dashboard" + (chosen ? `?session_id=${encodeURIComponent(chosen)}` : "");
  try {
    const response = await fetch(url, {headers: {Authorization: `Bearer ${t}`}});
    if (response.status === 401) { showLogin("Your sign-in has expired; sign in again."); return; }
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
    serverOffset = Date.parse(data.now) - Date.now();
    render(data);
  } catch (e) {
    $("#updated").textContent = `刷新失败 Refresh failed: ${e.message}`;
    $("#updated").classList.add("error");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", () => showLogin());
  $("#session-select").addEventListener("change", refresh);
  setInterval(tick, 1000);
  const site = siteSession();
  if (sessionStorage.getItem(TOKEN_KEY)) start();
  else if (site) start(site.account.name);
  else showLogin();
});
