// edgegw's operator page: one script for every page, no build step.
// The server sends the whole view once ("state"), then each change, as
// server-sent events; the page keeps a copy and redraws what it shows.
"use strict";

const S = {
  gateway: "", stages: {}, stage_names: [], uplink_usage: null, history: [], history_s: 3600, alerts: [],
  events: [], snapshots: [], levels: {}, knobs: {}, plan: null, auth: {},
};
const PAGE = document.body.dataset.page;
const CSRF = document.querySelector("meta[name=csrf-token]").content;
const MAX_ALERTS = 200;
const MAX_EVENTS = 50;
// When each alert first reached the screen (Date.now()), for the tests and the bench.
window.edgegwAlertSeen = {};

// -- small helpers -----------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svgEl(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function clock(ts) {
  return ts ? new Date(ts * 1000).toLocaleTimeString() : "-";
}

function num(value, digits = 1) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
}

function bytes(n) {
  if (n === null || n === undefined) return "-";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function table(headers, rows, numeric = []) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { class: numeric.includes(i) ? "num" : null }, h)))),
    el("tbody", {}, rows.map((row) => el("tr", row.attrs || {},
      (row.cells || row).map((cell, i) => el("td", { class: numeric.includes(i) ? "num" : null }, cell))))));
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": CSRF },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  let answer = {};
  try { answer = await response.json(); } catch (error) { answer = { error: String(error) }; }
  return { status: response.status, answer };
}

function describeErrors(errors) {
  return (errors || []).map((e) => `${e.field}: ${e.reason}`).join("; ");
}

// -- the live copy of the view ---------------------------------------------

const apply = {
  state(data) { Object.assign(S, data); },
  stage(d) { S.stages[d.stage] = d.row; },
  uplink_usage(d) {
    S.uplink_usage = d.usage;
    if (d.point) {
      S.history.push(d.point);
      const oldest = d.point.ts - S.history_s;
      while (S.history.length && S.history[0].ts < oldest) S.history.shift();
    }
  },
  alert(d) {
    S.alerts = S.alerts.filter((a) => a.alert_id !== d.alert_id);
    S.alerts.push(d);
    if (S.alerts.length > MAX_ALERTS) S.alerts.shift();
  },
  event(d) { S.events.push(d); if (S.events.length > MAX_EVENTS) S.events.shift(); },
  snapshot(d) {
    S.snapshots = S.snapshots.filter((s) => s.camera !== d.camera || s.label !== d.label);
    if (d.present) S.snapshots.push(d);
  },
  levels(d) { if (d.value) S.levels[d.analytic] = d.value; else delete S.levels[d.analytic]; },
  knobs(d) { if (d.value) S.knobs[d.analytic] = d.value; else delete S.knobs[d.analytic]; },
  plan(d) { S.plan = d.plan; },
  link(d) { S.broker_connected = d.connected; },
};

// What each page shows: other updates are kept but do not redraw it.
const SHOWS = {
  overview: ["stage", "uplink_usage"],
  alerts: ["alert", "event", "snapshot"],
  allocation: ["plan", "knobs", "levels"],
  analytics: ["levels", "knobs"],
  config: ["stage"],
};

let drawing = false;
function redraw() {
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(() => {
    drawing = false;
    draw();
  });
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/events");
  for (const kind of Object.keys(apply)) {
    source.addEventListener(kind, (message) => {
      apply[kind](JSON.parse(message.data));
      if (kind === "alert" && PAGE === "alerts") draw();  // on screen at once
      else if (kind === "state" || kind === "link" || SHOWS[PAGE].includes(kind)) redraw();
    });
  }
  source.addEventListener("open", () => { live.textContent = "live"; live.className = "badge ok"; });
  source.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "badge warning"; });
}

// -- header: login ---------------------------------------------------------

function drawAuth() {
  const auth = S.auth || {};
  document.getElementById("gateway").textContent = S.gateway ? `gateway ${S.gateway}` : "";
  const broker = document.getElementById("broker");
  broker.hidden = S.broker_connected !== false;
  broker.textContent = "the gateway's web stage has lost the broker: what you see may be stale";
  document.getElementById("login").hidden = !auth.login_enabled || auth.logged_in;
  document.getElementById("session").hidden = !auth.logged_in;
  document.getElementById("readonly").hidden = Boolean(auth.logged_in);
}

function setUpLogin() {
  document.getElementById("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = document.getElementById("password");
    const { status, answer } = await post("/login", { password: password.value });
    password.value = "";
    document.getElementById("login-error").textContent = status === 200 ? "" : answer.error;
    if (status === 200) { S.auth.logged_in = true; draw(); }
  });
  document.getElementById("logout-button").addEventListener("click", async () => {
    await post("/logout", {});
    S.auth.logged_in = false;
    draw();
  });
}

// -- overview --------------------------------------------------------------

function stageNames() {
  return [...new Set([...S.stage_names, ...Object.keys(S.stages)])].filter((n) => S.stages[n]).sort();
}

function drawOverview(content) {
  const now = Date.now() / 1000;
  const rows = stageNames().map((name) => {
    const row = S.stages[name];
    const health = row.health || {};
    const counters = (row.metrics || {}).counters || {};
    const state = row.config_state || {};
    return {
      attrs: { "data-stage": name },
      cells: [
        name,
        el("span", { class: row.status || "" }, row.status || "?"),
        el("span", { class: health.state || "" }, health.state || "-"),
        health.uptime_s !== undefined ? `${Math.round(health.uptime_s)} s` : "-",
        health.reconnects ?? "-",
        state.generation ?? "-",
        counters.received ?? "-",
        counters.published ?? "-",
        counters.dead_letters ?? 0,
        health.ts ? `${Math.max(0, Math.round(now - health.ts))} s ago` : "-",
      ],
    };
  });
  const unseen = S.stage_names.filter((n) => !S.stages[n]);
  const u = S.uplink_usage;
  const cards = el("div", { class: "cards" },
    el("div", { class: "card", id: "uplink-card" }, "uplink ", el("br"),
      el("b", {}, u ? `${num(u.used_kbps)} of ${u.budget_kbps === null ? "?" : num(u.budget_kbps)} kbit/s` : "no report yet"),
      el("br"), u ? `budget from ${u.budget_source}; cloud ${u.cloud_connected ? "connected" : "DOWN"}` : ""),
    el("div", { class: "card", id: "spool-card" }, "spool ", el("br"),
      el("b", {}, u ? `${u.spool_entries} messages` : "-"), el("br"),
      u ? `${bytes(u.spool_bytes)} of ${bytes(u.spool_max_bytes)}${u.spool_disk_full ? " — DISK FULL" : ""}` : ""),
  );
  content.replaceChildren(
    el("h2", {}, "Stages"),
    rows.length ? table(["stage", "status", "health", "uptime", "reconnects", "config gen.", "received", "published", "dead letters", "last health"], rows, [3, 4, 5, 6, 7, 8])
      : el("p", { class: "note" }, "no stage has reported yet"),
    unseen.length ? el("p", { class: "note", id: "unseen" }, `not seen on this gateway: ${unseen.join(", ")}`) : null,
    el("h2", {}, "Uplink"),
    cards,
    el("h2", {}, "Uplink use vs budget, last hour"),
    uplinkChart(),
  );
}

function uplinkChart() {
  const W = 900, H = 240, L = 50, R = 10, T = 10, B = 30;
  const now = Date.now() / 1000;
  const span = S.history_s || 3600;
  const points = S.history.filter((p) => p.ts >= now - span);
  const top = Math.max(1, ...points.map((p) => p.used_kbps), ...points.map((p) => p.budget_kbps || 0)) * 1.15;
  const x = (ts) => L + ((ts - (now - span)) / span) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const svg = svgEl("svg", { class: "chart", id: "uplink-chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "uplink use and budget over the last hour" });
  for (let i = 0; i <= 4; i++) {
    const v = (top / 4) * i;
    svg.append(svgEl("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    svg.append(svgEl("text", { x: 4, y: y(v) + 4 }, num(v, top < 10 ? 1 : 0)));
  }
  for (let m = 0; m <= 60; m += 15) {
    svg.append(svgEl("text", { x: x(now - span + m * 60) - 12, y: H - 8 }, m === 60 ? "now" : `-${60 - m} min`));
  }
  svg.append(svgEl("text", { x: L + 4, y: T + 12 }, "kbit/s — used (solid), budget (dashed)"));
  if (points.length) {
    svg.append(svgEl("polyline", { class: "used", points: points.map((p) => `${x(p.ts).toFixed(1)},${y(p.used_kbps).toFixed(1)}`).join(" ") }));
    const budget = [];
    for (const p of points) {
      if (p.budget_kbps === null) continue;
      if (budget.length) budget.push(`${x(p.ts).toFixed(1)},${budget[budget.length - 1].split(",")[1]}`);
      budget.push(`${x(p.ts).toFixed(1)},${y(p.budget_kbps).toFixed(1)}`);
    }
    if (budget.length) svg.append(svgEl("polyline", { class: "budget", points: budget.join(" ") }));
  } else {
    svg.append(svgEl("text", { x: W / 2 - 90, y: H / 2 }, "no uplink report yet"));
  }
  return svg;
}

// -- alerts ----------------------------------------------------------------

const alertFilter = { text: "", severity: "" };
let alertsBuilt = false;

function snapshotFor(alert) {
  for (const part of alert.parts || []) {
    if (part.kind !== "object") continue;
    const found = S.snapshots.find((s) => s.label === part.label && s.camera === part.source);
    if (found) return found;
  }
  return null;
}

function thumbnail(snapshot) {
  return el("img", {
    class: "thumb", alt: `${snapshot.camera} ${snapshot.label}`,
    src: `/snapshot/${encodeURIComponent(snapshot.camera)}/${encodeURIComponent(snapshot.label)}.jpg?t=${snapshot.ts}`,
  });
}

function drawAlerts(content) {
  if (!alertsBuilt) {
    alertsBuilt = true;
    const text = el("input", { type: "search", id: "alert-filter", placeholder: "filter: label, source, place…" });
    const severity = el("select", { id: "severity-filter" },
      ["", "info", "warning", "critical"].map((s) => el("option", { value: s }, s || "any severity")));
    text.addEventListener("input", () => { alertFilter.text = text.value.toLowerCase(); draw(); });
    severity.addEventListener("change", () => { alertFilter.severity = severity.value; draw(); });
    content.replaceChildren(
      el("div", { class: "filters" }, text, severity, el("span", { id: "alert-count", class: "note" })),
      el("div", { id: "alert-list" }),
      el("h2", {}, "Snapshots"), el("div", { id: "gallery", class: "gallery" }),
      el("h2", {}, "Recent events"), el("div", { id: "event-list" }),
    );
  }
  const shown = S.alerts.slice().reverse().filter((a) => {
    if (alertFilter.severity && a.severity !== alertFilter.severity) return false;
    if (!alertFilter.text) return true;
    const sources = (a.parts || []).map((p) => p.source).join(" ");
    return `${a.label} ${a.topic_source} ${sources} ${a.place || ""} ${a.summary} ${(a.zones || []).join(" ")}`
      .toLowerCase().includes(alertFilter.text);
  });
  const rows = shown.map((a) => {
    const snapshot = snapshotFor(a);
    return {
      attrs: { "data-alert-id": a.alert_id, class: "alert-row" },
      cells: [
        clock(a.ts), el("span", { class: a.severity }, a.severity), a.type, a.label,
        [a.topic_source, ...new Set((a.parts || []).map((p) => p.source).filter((s) => s !== a.topic_source))].join(", "),
        [a.place, ...(a.zones || [])].filter(Boolean).join(", "), a.summary,
        snapshot ? thumbnail(snapshot) : "",
      ],
    };
  });
  document.getElementById("alert-count").textContent = `${shown.length} of ${S.alerts.length} alerts`;
  document.getElementById("alert-list").replaceChildren(
    rows.length ? table(["time", "severity", "type", "label", "source", "place", "summary", "snapshot"], rows)
      : el("p", { class: "note" }, "no alert yet"));
  const seen = Date.now();
  for (const a of shown) if (!(a.alert_id in window.edgegwAlertSeen)) window.edgegwAlertSeen[a.alert_id] = seen;
  document.getElementById("gallery").replaceChildren(...(S.snapshots.length
    ? S.snapshots.slice().reverse().map((s) => el("figure", {}, thumbnail(s), el("figcaption", {}, `${s.camera} · ${s.label} · ${clock(s.ts)}`)))
    : [el("p", { class: "note" }, "no snapshot yet")]));
  const events = S.events.slice(-20).reverse().map((e) => [clock(e.ts), e.type, e.kind, e.label, e.topic_source]);
  document.getElementById("event-list").replaceChildren(
    events.length ? table(["time", "type", "kind", "label", "source"], events) : el("p", { class: "note" }, "no event yet"));
}

// -- allocation --------------------------------------------------------------

let allocationBuilt = false;
const whatIf = { busy: false, wanted: null, asked: null };

function planTable(plan, id) {
  if (!plan) return el("p", { class: "note", id }, "no plan yet");
  const rows = plan.choices.map((c) => ({
    attrs: { "data-analytic": c.analytic },
    cells: [c.analytic, c.level, num(c.cost_kbps), num(c.utility, 3), num(c.weight, 2)],
  }));
  return el("div", { id },
    table(["analytic", "level", "kbit/s", "utility", "weight"], rows, [2, 3, 4]),
    el("p", {}, `budget ${num(plan.budget_kbps)} kbit/s · used ${num(plan.cost_kbps)} kbit/s · weighted utility ${num(plan.total_utility, 3)} · solver ${plan.solver} (${num(plan.solve_ms, 2)} ms)`),
    plan.feasible ? (plan.reason ? el("p", { class: "note" }, plan.reason) : null)
      : el("p", { class: "error" }, `not feasible: ${plan.reason}`));
}

function sliderMax() {
  let most = 0;
  for (const levels of Object.values(S.levels)) most += Math.max(0, ...levels.levels.map((l) => l.cost_kbps));
  const budget = (S.plan && S.plan.budget_kbps) || 0;
  return Math.max(100, Math.ceil(Math.max(most * 1.2, budget * 2)));
}

async function askAllocator() {
  if (whatIf.busy || whatIf.wanted === null || whatIf.wanted === whatIf.asked) return;
  whatIf.busy = true;
  const budget = whatIf.wanted;
  whatIf.asked = budget;
  const out = document.getElementById("whatif");
  const { status, answer } = await post("/api/plan", { budget_kbps: budget });
  whatIf.busy = false;
  if (status === 200) {
    out.replaceChildren(el("p", { class: "note" }, `dry run at ${budget} kbit/s — nothing changed`), planTable(answer, "whatif-plan"));
    out.dataset.budget = String(budget);
  } else {
    out.replaceChildren(el("p", { class: "error", id: "whatif-error" }, answer.error || `HTTP ${status}`));
  }
  askAllocator();  // the slider moved on meanwhile: ask again, latest only
}

function drawAllocation(content) {
  if (!allocationBuilt) {
    allocationBuilt = true;
    const value = el("output", { id: "budget-value" }, "-");
    const slider = el("input", { type: "range", id: "budget-slider", min: 0, max: 1000, step: 1, value: 0 });
    slider.addEventListener("input", () => {
      value.textContent = `${slider.value} kbit/s`;
      whatIf.wanted = Number(slider.value);
      askAllocator();
    });
    content.replaceChildren(
      el("div", { id: "plan-now" }),
      el("h2", {}, "What if the budget were…"),
      el("div", {}, slider, " ", value),
      el("div", { id: "whatif" }, el("p", { class: "note" }, "move the slider: the allocator answers with a dry run")),
    );
  }
  const knobs = Object.entries(S.knobs).sort().map(([name, k]) => [name, k.level.name, num(k.level.cost_kbps), num(k.level.utility, 3)]);
  document.getElementById("plan-now").replaceChildren(
    el("h2", {}, "Plan in force"), planTable(S.plan, "plan-table"),
    el("h2", {}, "Knobs published"),
    knobs.length ? table(["analytic", "level", "kbit/s", "utility"], knobs, [2, 3]) : el("p", { class: "note" }, "no knob yet"));
  const slider = document.getElementById("budget-slider");
  if (document.activeElement !== slider && whatIf.wanted === null) {
    slider.max = sliderMax();
    slider.value = Math.round((S.plan && S.plan.budget_kbps) || 0);
    document.getElementById("budget-value").textContent = `${slider.value} kbit/s`;
  }
}

// -- analytics ---------------------------------------------------------------

function drawAnalytics(content) {
  const rows = Object.entries(S.levels).sort().map(([name, offer]) => {
    const costs = offer.levels.map((l) => l.cost_kbps);
    const utilities = offer.levels.map((l) => l.utility);
    const knob = S.knobs[name];
    return {
      attrs: { "data-analytic": name },
      cells: [name, offer.source, offer.levels.map((l) => l.name).join(", "),
        `${num(Math.min(...costs))} – ${num(Math.max(...costs))}`,
        `${num(Math.min(...utilities), 2)} – ${num(Math.max(...utilities), 2)}`,
        knob ? knob.level.name : "-"],
    };
  });
  content.replaceChildren(
    el("p", { class: "note", id: "analytics-source" },
      "This build has no deployer state topics yet: the analytics below are those that offer QoS levels (retained qos/<analytic>/levels)."),
    rows.length ? table(["analytic", "offered by", "levels", "kbit/s", "utility", "running at"], rows)
      : el("p", { class: "note" }, "no analytic offers levels yet"));
}

// -- config ------------------------------------------------------------------

const editors = {};

function overrideText(row) {
  const config = row && row.config;
  if (config === undefined || config === null) return "{}";
  if (typeof config !== "object") return String(config);
  const { generation, ...rest } = config;
  return JSON.stringify(rest, null, 2);
}

async function submitConfig(stage) {
  const editor = editors[stage];
  const answerBox = editor.answer;
  let values;
  try {
    values = JSON.parse(editor.text.value || "{}");
  } catch (error) {
    answerBox.className = "answer rejected";
    answerBox.textContent = `rejected — payload: invalid JSON (${error.message})`;
    return;
  }
  if (typeof values !== "object" || values === null || Array.isArray(values)) {
    answerBox.className = "answer rejected";
    answerBox.textContent = "rejected — payload: must be a JSON object";
    return;
  }
  answerBox.className = "answer";
  answerBox.textContent = "published; waiting for the stage's answer…";
  const { status, answer } = await post(`/api/config/${encodeURIComponent(stage)}`, { config: values });
  editor.dirty = false;
  if (status !== 200) {
    answerBox.className = "answer rejected";
    answerBox.textContent = `refused (HTTP ${status}) — ${answer.error}`;
  } else if (answer.status === "accepted") {
    answerBox.className = "answer accepted";
    answerBox.textContent = `accepted — generation ${answer.generation}`;
  } else {
    answerBox.className = "answer rejected";
    answerBox.textContent = `rejected — ${describeErrors(answer.errors)}`;
  }
}

function drawConfig(content) {
  const names = stageNames();
  if (!names.length) {
    content.replaceChildren(el("p", { class: "note" }, "no stage has reported yet"));
    return;
  }
  if (content.dataset.stages !== names.join(",")) {
    content.dataset.stages = names.join(",");
    content.replaceChildren(...names.map((name) => {
      const text = el("textarea", { id: `config-${name}`, spellcheck: "false", "aria-label": `${name} config override` });
      text.addEventListener("input", () => { editors[name].dirty = true; });
      const button = el("button", { id: `apply-${name}`, type: "button", onclick: () => submitConfig(name) }, "Publish config");
      const previous = editors[name];
      editors[name] = {
        text, button, dirty: previous ? previous.dirty : false,
        answer: previous ? previous.answer : el("p", { class: "answer", id: `answer-${name}` }),
        state: el("div", { class: "state" }),
      };
      if (previous) text.value = previous.text.value;
      return el("section", { class: "stage-config", "data-stage": name },
        el("h2", {}, name), editors[name].state,
        el("label", { for: `config-${name}` }, "override (retained config/", name, "), JSON:"),
        text, button, editors[name].answer);
    }));
  }
  for (const name of names) {
    const row = S.stages[name];
    const editor = editors[name];
    editor.button.disabled = !(S.auth && S.auth.logged_in);
    if (!editor.dirty && document.activeElement !== editor.text) editor.text.value = overrideText(row);
    const state = row.config_state;
    const shown = JSON.stringify(state || null);
    if (editor.shown === shown) continue;  // health and metrics do not change it
    editor.shown = shown;
    editor.state.replaceChildren(
      state ? el("p", {}, "last answer: ", el("span", { class: state.status }, state.status),
        ` · generation ${state.generation} · ${clock(state.ts)}`,
        state.errors && state.errors.length ? el("span", { class: "error" }, ` · ${describeErrors(state.errors)}`) : "")
        : el("p", { class: "note" }, "no applied-state answer yet (the stage has had no config message)"),
      state ? el("details", { open: true }, el("summary", {}, "config in force"), el("pre", {}, JSON.stringify(state.applied, null, 2))) : "");
  }
}

// -- the page ----------------------------------------------------------------

const PAGES = { overview: drawOverview, alerts: drawAlerts, allocation: drawAllocation, analytics: drawAnalytics, config: drawConfig };
let rendered = false;

function draw() {
  drawAuth();
  PAGES[PAGE](document.getElementById("content"));
  if (!rendered) {
    rendered = true;
    performance.mark("edgegw-rendered");
    document.body.dataset.ready = "1";
  }
}

setUpLogin();
connect();
// The chart's time axis moves on even when nothing arrives.
if (PAGE === "overview") setInterval(redraw, 10000);
