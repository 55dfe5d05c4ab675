// Kaowu operator dashboard: plain JS, no build step, nothing loaded from elsewhere.
// The token from the sign-in form lives in sessionStorage (this tab only); the figures
// come from GET /api/ops/dashboard every 5 s. A source that is down shows "unavailable".
"use strict";

const TOKEN_KEY = "kaowu.dashboard.token";
const REFRESH_MS = 5000;
const UNAVAILABLE = "unavailable 不可用";
let deadlineAt = null; // ms since the epoch, from the server's "seconds" at fetch time
let timer = null;
let inFlight = false; // a slow refresh (a service timing out) is not stacked on

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

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function showLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
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
  sessionStorage.setItem(TOKEN_KEY, answer.token);
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
  for (const step of data.funnel) {
    const row = el("tr");
    const cell = el("td", step.available ? step.value : UNAVAILABLE,
                    {"data-figure": `funnel.${step.key}`});
    if (!step.available) cell.classList.add("unavailable");
    row.append(el("th", step.label), cell);
    funnel.append(row);
  }

  for (const id of ["applications", "cases", "enquiries", "admission", "scoring",
                    "certificates", "notifications"]) {
    countsTable(id, data[id]);
  }

  const queues = $("#queues tbody");
  queues.replaceChildren();
  for (const q of data.manual_queues) {
    const row = el("tr");
    const cell = el("td", q.available ? q.waiting : UNAVAILABLE, {"data-figure": `queue.${q.code}`});
    if (!q.available) cell.classList.add("unavailable");
    row.append(el("th", `${q.code} ${q.name}`), cell);
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
  $("#updated").textContent = `更新于 Updated ${new Date().toLocaleTimeString()}`;
  $("#updated").classList.remove("error");
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
}

function tick() {
  if (deadlineAt === null) { setFigure("deadline.countdown", "—"); return; }
  let left = Math.max(0, Math.round((deadlineAt - Date.now()) / 1000));
  const days = Math.floor(left / 86400); left -= days * 86400;
  const h = Math.floor(left / 3600); left -= h * 3600;
  const m = Math.floor(left / 60); const sec = left - m * 60;
  const pad = (n) => String(n).padStart(2, "0");
  setFigure("deadline.countdown", `${days}d ${pad(h)}:${pad(m)}:${pad(sec)}`);
}

async function refresh() {
  const t = token();
  if (!t) { showLogin(); return; }
  if (inFlight) return;
  inFlight = true;
  try { await load(t); } finally { inFlight = false; }
}

async function load(t) {
  const chosen = $("#session-select").value;
  const url = "/api/ops/dashboard" + (chosen ? `?session_id=${encodeURIComponent(chosen)}` : "");
  try {
    const response = await fetch(url, {headers: {Authorization: `Bearer ${t}`}});
    if (response.status === 401) { showLogin("Your sign-in has expired; sign in again."); return; }
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
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
  if (token()) start(); else showLogin();
});
