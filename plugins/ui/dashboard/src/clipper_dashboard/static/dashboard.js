// clipper's dashboard: plain JavaScript (no build step), uPlot for the charts (vendored from npm at install time).
// Pages by the URL's hash: #/ (overview), #/app/NAME, #/model/NAME/VERSION, #/logs. Every second the page reads
// /dashboard/api/live (cumulative counters) and turns two readings into rates and interval quantiles; every few
// seconds /dashboard/api/overview (records). Actions call the admin API with the same bearer token.
"use strict";

const LIVE_MS = 1000;
const OVERVIEW_MS = 3000;
const POINTS = 300; // five minutes at one reading a second
const TOKEN_KEY = "clipper-admin-token";

const state = {
  overview: null,
  lastLive: null, // the previous reading of /dashboard/api/live
  series: { apps: {}, models: {} }, // name -> {t: [], <figure>: []}
  charts: [], // the charts of the page shown: {plot, key, kind, fields}
  route: "",
  refused: false,
  lookup: {}, // app -> uid last looked up
};

// -- helpers ------------------------------------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);
const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits));
const ms = (s) => (s === null || s === undefined ? null : s * 1000);
const enc = encodeURIComponent;

function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${s.toFixed(0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// -- the admin token and the server's answers -----------------------------------------------------------------
function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

class Refused extends Error {}

async function call(method, path, body) {
  const headers = {};
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = text;
  try { data = JSON.parse(text); } catch (e) { /* a plain-text success message of the admin API */ }
  if (response.status === 401) {
    setRefused(data && data.cause ? data.cause : "refused");
    throw new Refused(data && data.cause ? data.cause : "refused");
  }
  if (!response.ok) {
    const message = data && data.error ? `${data.error}: ${data.cause}` : `${response.status} ${text}`;
    const err = new Error(message);
    err.status = response.status;
    throw err;
  }
  return data;
}

function setRefused(cause) {
  state.refused = true;
  const status = $("status");
  status.textContent = token() ? "refused: wrong token" : "refused: this server needs the admin token";
  status.className = "status refused";
  $("token-form").hidden = false;
  $("token-message").textContent = token() ? `the server refused this token (${cause})` : "";
  $("token-input").focus();
}

function setLive() {
  state.refused = false;
  $("status").textContent = `live · ${new Date().toLocaleTimeString()}`;
  $("status").className = "status live";
}

function notice(text, ok) {
  const el = $("notice");
  el.hidden = false;
  el.className = `notice ${ok ? "ok" : "error"}`;
  el.textContent = text;
}

async function action(question, method, path, body) {
  if (!window.confirm(question)) return null;
  try {
    const answer = await call(method, path, body);
    notice(typeof answer === "string" ? answer : `done: ${JSON.stringify(answer)}`, true);
    await pollOverview();
    return answer;
  } catch (err) {
    if (!(err instanceof Refused)) notice(err.message, false);
    return null;
  }
}

// -- live figures: rates and interval quantiles from two cumulative readings -------------------------------------
function quantile(before, now, q) {
  // Linear interpolation inside the bucket where the q-th observation falls (as Prometheus' histogram_quantile).
  if (!now) return null;
  const deltas = now.counts.map((c, i) => Math.max(0, c - (before ? before.counts[i] : 0)));
  const total = deltas.reduce((a, b) => a + b, 0);
  if (!total) return null;
  const target = q * total;
  let running = 0;
  for (let i = 0; i < deltas.length; i++) {
    if (running + deltas[i] >= target && deltas[i] > 0) {
      if (i >= now.bounds.length) return now.bounds[now.bounds.length - 1];
      const low = i === 0 ? 0 : now.bounds[i - 1];
      return low + (now.bounds[i] - low) * ((target - running) / deltas[i]);
    }
    running += deltas[i];
  }
  return now.bounds[now.bounds.length - 1];
}

function meanOf(before, now) {
  const n = now.count - (before ? before.count : 0);
  return n > 0 ? (now.sum - (before ? before.sum : 0)) / n : null;
}

function rate(before, now, field, dt) { return before ? Math.max(0, now[field] - before[field]) / dt : null; }

function ratio(a, b) { return a + b > 0 ? a / (a + b) : null; }

function pct(v) { return v === null ? null : 100 * v; }

function push(series, t, figures) {
  series.t.push(t);
  for (const [k, v] of Object.entries(figures)) (series[k] = series[k] || []).push(v);
  if (series.t.length > POINTS) for (const k of Object.keys(series)) series[k].shift();
}

function record(reading) {
  const prev = state.lastLive;
  const t = Date.now() / 1000;
  const dt = prev ? reading.t - prev.t : 0;
  if (prev && dt <= 0) return;
  if (reading.source === "in-process") {
    for (const [name, now] of Object.entries(reading.apps)) {
      const before = prev && prev.apps[name];
      const s = state.series.apps[name] = state.series.apps[name] || { t: [] };
      if (!before) continue;
      push(s, t, {
        rps: rate(before, now, "predictions", dt),
        defaults: rate(before, now, "defaults", dt),
        p50: ms(quantile(before.latency, now.latency, 0.5)),
        p99: ms(quantile(before.latency, now.latency, 0.99)),
        slo: ms(now.slo_s),
        hit: pct(ratio(now.cache_hits - before.cache_hits, now.cache_misses - before.cache_misses)),
      });
    }
    for (const [key, now] of Object.entries(reading.models)) {
      const before = prev && prev.models[key];
      const s = state.series.models[key] = state.series.models[key] || { t: [] };
      if (!before) continue;
      push(s, t, {
        rps: rate(before, now, "predictions", dt),
        batch: meanOf(before.batch_size, now.batch_size),
        queue: now.queue_length,
        qp50: ms(quantile(before.queue_time, now.queue_time, 0.5)),
        qp99: ms(quantile(before.queue_time, now.queue_time, 0.99)),
        cp50: ms(quantile(before.compute, now.compute, 0.5)),
        cp99: ms(quantile(before.compute, now.compute, 0.99)),
        replicas: now.replicas,
      });
    }
  } else {
    for (const [key, now] of Object.entries(reading.models)) {
      const s = state.series.models[key] = state.series.models[key] || { t: [] };
      push(s, t, { rps: now.answered_per_s, queue: now.queue_length, qp99: ms(now.p99_s), replicas: now.replicas });
    }
  }
  state.lastLive = reading;
}

async function pollLive() {
  try {
    record(await call("GET", "/dashboard/api/live"));
    setLive();
    drawCharts();
    renderLiveFigures();
  } catch (err) {
    if (!(err instanceof Refused)) $("status").textContent = `cannot read live figures: ${err.message}`;
  }
}

async function pollOverview() {
  try {
    state.overview = await call("GET", "/dashboard/api/overview");
    setLive();
    renderNav();
    render();
  } catch (err) {
    if (!(err instanceof Refused)) $("status").textContent = `cannot read the overview: ${err.message}`;
  }
}

// -- charts ----------------------------------------------------------------------------------------------------
const COLORS = ["#0b62c4", "#b3261e", "#1a7f37", "#9a6700", "#6f42c1"];

function chart(title, kind, key, fields, log) {
  // fields: [[figure, label, options]]; log: a logarithmic y axis (latencies next to an SLO far above them).
  // The chart's element carries data-points (the readings it shows) for tests and screenshots.
  const box = h("div", { class: "chart", dataset: { chart: title, points: "0" } });
  const series = [{}].concat(fields.map(([, label, opts], i) => Object.assign(
    { label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true }, opts || {})));
  const plot = new uPlot({
    title, width: 420, height: 200, series,
    scales: { x: { time: true }, y: log ? { distr: 3 } : {} },
    axes: [{}, { size: 64 }],
  }, [[]].concat(fields.map(() => [])), box);
  state.charts.push({ plot, kind, key, fields, box });
  return box;
}

function drawCharts() {
  for (const c of state.charts) {
    const s = state.series[c.kind][c.key];
    if (!s) continue;
    const data = [s.t.slice()].concat(c.fields.map(([f]) => (s[f] || s.t.map(() => null)).slice()));
    const width = Math.max(300, c.box.clientWidth || 420);
    if (c.plot.width !== width) c.plot.setSize({ width, height: 200 });
    c.plot.setData(data);
    c.box.dataset.points = String(s.t.length);
  }
}

function clearCharts() {
  for (const c of state.charts) c.plot.destroy();
  state.charts = [];
}

// -- navigation ------------------------------------------------------------------------------------------------
function renderNav() {
  const o = state.overview;
  if (!o) return;
  const links = [["#/", "Overview"]]
    .concat(o.apps.map((a) => [`#/app/${enc(a.name)}`, `app ${a.name}`]))
    .concat(o.models.map((m) => [`#/model/${enc(m.model_name)}/${enc(m.model_version)}`, `${m.model_name}:${m.model_version}`]))
    .concat([["#/logs", "Logs"]]);
  const here = location.hash || "#/";
  $("nav").replaceChildren(...links.map(([href, label]) => h("a", { href, class: href === here ? "active" : null }, label)));
}

function render() {
  const route = location.hash || "#/";
  const o = state.overview;
  if (!o) return;
  const parts = route.slice(2).split("/").map(decodeURIComponent);
  if (route !== state.route) {
    state.route = route;
    clearCharts();
    $("main").replaceChildren(...page(parts, o, true));
    drawCharts();
  } else {
    for (const el of document.querySelectorAll("[data-refresh]")) el.replaceWith(refreshable(el.dataset.refresh, parts, o));
  }
  renderLiveFigures();
}

function page(parts, o, fresh) {
  if (parts[0] === "app" && parts[1]) return appPage(parts[1], o);
  if (parts[0] === "model" && parts[1]) return modelPage(parts[1], parts[2] || "", o);
  if (parts[0] === "logs") return logsPage(o);
  return overviewPage(o);
}

// Sections that are rebuilt on every overview reading (no inputs inside them), by name.
function refreshable(name, parts, o) {
  const builders = {
    apps: () => appsTable(o), models: () => modelsTable(o), replicas: () => replicasTable(o.models),
    frontends: () => frontendsList(o), plugins: () => pluginsTable(o), rollouts: () => rolloutsTable(o.rollouts),
    "model-replicas": () => replicasTable(o.models.filter((m) => m.model_name === parts[1] && m.model_version === parts[2])),
    "model-rollout": () => rolloutsTable(o.rollouts.filter((r) => r.model === parts[1])),
    "model-autoscaler": () => autoscalerPanel(o.models.find((m) => m.model_name === parts[1] && m.model_version === parts[2])),
    "app-info": () => appInfo(o.apps.find((a) => a.name === parts[1]), o),
    "model-info": () => modelInfo(o.models.find((m) => m.model_name === parts[1] && m.model_version === parts[2])),
  };
  const el = builders[name]();
  el.dataset.refresh = name;
  return el;
}

// -- overview ------------------------------------------------------------------------------------------------------
function overviewPage(o) {
  const s = o.server;
  return [
    h("section", { class: "wide", id: "server" }, h("h2", {}, "Server"),
      h("div", { class: "figures" },
        figure(s.embedded ? "embedded" : "management only", "mode"),
        figure(s.query_addr || "–", "queries"), figure(s.admin_addr || "–", "admin"),
        figure(s.rpc_addr || "–", "RPC"), figure(String(s.pid), "pid"),
        figure(s.token_required ? "required" : "not set", "admin token"))),
    h("section", { class: "wide" }, h("h2", {}, "Applications"), refreshable("apps", [], o)),
    h("section", { class: "wide" }, h("h2", {}, "Models and versions"), refreshable("models", [], o)),
    h("section", { class: "wide" }, h("h2", {}, "Replicas"), refreshable("replicas", [], o)),
    h("section", { class: "wide" }, h("h2", {}, "Rollouts"), refreshable("rollouts", [], o)),
    h("section", {}, h("h2", {}, "Query frontends"), refreshable("frontends", [], o)),
    h("section", {}, h("h2", {}, "Plugins"), refreshable("plugins", [], o)),
  ];
}

function figure(value, label, attrs) {
  return h("div", Object.assign({ class: "figure" }, attrs || {}), h("b", {}, value), h("span", {}, label));
}

function last(series, field) {
  if (!series || !series[field]) return null;
  for (let i = series[field].length - 1; i >= 0; i--) if (series[field][i] !== null) return series[field][i];
  return null;
}

function appsTable(o) {
  return h("table", { id: "apps" },
    h("tr", {}, ["app", "input", "policy", "SLO ms", "linked models", "default output", "req/s", "p99 ms"].map((c) => h("th", {}, c))),
    o.apps.map((a) => {
      const s = state.series.apps[a.name];
      return h("tr", { dataset: { app: a.name } },
        h("td", {}, h("a", { href: `#/app/${enc(a.name)}` }, a.name)), h("td", {}, a.input_type),
        h("td", {}, a.policy), h("td", { class: "num" }, fmt(a.latency_slo_micros / 1000, 0)),
        h("td", {}, a.linked_models.join(", ") || "none"), h("td", {}, h("code", {}, a.default_output)),
        h("td", { class: "num", dataset: { live: "rps" } }, fmt(last(s, "rps"))),
        h("td", { class: "num", dataset: { live: "p99" } }, fmt(last(s, "p99"))));
    }));
}

function modelsTable(o) {
  return h("table", { id: "models" },
    h("tr", {}, ["model", "version", "current", "input", "batch size", "replicas wanted", "connected", "autoscaling"].map((c) => h("th", {}, c))),
    o.models.map((m) => h("tr", { dataset: { model: `${m.model_name}:${m.model_version}` } },
      h("td", {}, h("a", { href: `#/model/${enc(m.model_name)}/${enc(m.model_version)}` }, m.model_name)),
      h("td", {}, m.model_version), h("td", {}, m.is_current_version ? "current" : ""),
      h("td", {}, m.input_type), h("td", { class: "num" }, m.batch_size === -1 ? "adaptive" : m.batch_size),
      h("td", { class: "num", dataset: { field: "num_replicas" } }, m.num_replicas),
      h("td", { class: "num", dataset: { field: "connected" } }, m.replicas.filter((r) => r.state === "connected").length),
      h("td", {}, m.autoscaling ? `${m.autoscaling.min_replicas ?? ""}–${m.autoscaling.max_replicas ?? ""}` : "off"))));
}

function replicasTable(models) {
  const rows = [];
  for (const m of models) for (const r of m.replicas) rows.push([m, r]);
  if (!rows.length) return h("p", { class: "muted" }, "no replicas");
  return h("table", { class: "replicas" },
    h("tr", {}, ["model", "slot", "replica id", "pid", "state", "restarts", "uptime", "log"].map((c) => h("th", {}, c))),
    rows.map(([m, r]) => h("tr", {},
      h("td", {}, `${m.model_name}:${m.model_version}`), h("td", { class: "num" }, r.slot ?? "–"),
      h("td", { class: "num" }, r.replica_id ?? "–"), h("td", { class: "num" }, r.pid ?? "–"),
      h("td", { class: `state-${r.state}` }, r.state), h("td", { class: "num" }, r.restarts ?? "–"),
      h("td", { class: "num" }, duration(r.uptime_s)),
      h("td", {}, r.log ? h("a", { href: `#/logs`, onclick: () => { state.logFile = r.log; } }, "last lines") : "–"))));
}

function rolloutsTable(rollouts) {
  if (!rollouts.length) return h("p", { class: "muted" }, "no rollouts");
  return h("table", { class: "rollouts" },
    h("tr", {}, ["model", "candidate", "baseline", "mode", "state", "step", "candidate share", "reason", ""].map((c) => h("th", {}, c))),
    rollouts.map((r) => {
      const active = r.state === "running" || r.state === "paused";
      return h("tr", { dataset: { rollout: r.model } },
        h("td", {}, r.model), h("td", {}, r.candidate), h("td", {}, r.baseline), h("td", {}, r.settings.mode),
        h("td", { class: `state-${r.state}` }, r.state), h("td", { class: "num" }, `${r.step + 1}/${r.settings.steps.length}`),
        h("td", { class: "num" }, r.mirrored !== undefined ? `${fmt(r.mirrored * 100, 1)}% mirrored` : `${fmt((r.weights[r.candidate] || 0) * 100, 1)}%`),
        h("td", {}, r.reason),
        h("td", { class: "actions" },
          active && r.state === "running" ? h("button", { type: "button", dataset: { action: "pause" },
            onclick: () => action(`Pause the rollout of ${r.model}?`, "POST", "/admin/pause_rollout", { model_name: r.model }) }, "Pause") : null,
          active ? h("button", { type: "button", dataset: { action: "abort" },
            onclick: () => action(`Abort the rollout of ${r.model} (its candidate gets no more queries)?`, "POST", "/admin/abort_rollout", { model_name: r.model }) }, "Abort") : null));
    }));
}

function frontendsList(o) {
  if (!o.frontends.length) return h("p", { class: "muted" }, "none registered");
  return h("ul", {}, o.frontends.map((f) => h("li", {}, h("code", {}, f))));
}

function pluginsTable(o) {
  return h("table", {}, h("tr", {}, ["plugin", "distribution", "version"].map((c) => h("th", {}, c))),
    o.plugins.map((p) => h("tr", {}, h("td", {}, p.name), h("td", {}, p.distribution), h("td", {}, p.version))));
}

// -- an application ---------------------------------------------------------------------------------------------
function appPage(name, o) {
  const app = o.apps.find((a) => a.name === name);
  if (!app) return [h("section", { class: "wide" }, h("p", { class: "error" }, `no application named ${name}`))];
  const uid = state.lookup[name] ?? 0;
  const input = h("input", { type: "number", min: "0", step: "1", value: String(uid), id: "uid-input" });
  const panel = h("div", { id: "learned" }, h("p", { class: "muted" }, "reading…"));
  const lookup = async () => {
    state.lookup[name] = input.value;
    await showLearned(name, input.value, panel);
  };
  lookup();
  return [
    h("section", { class: "wide" }, h("h2", {}, `Application ${name}`), refreshable("app-info", ["app", name], o)),
    h("section", {}, chart("requests/s", "apps", name, [["rps", "answered/s"], ["defaults", "defaults/s"]])),
    h("section", {}, chart("latency ms (p50, p99, SLO)", "apps", name,
      [["p50", "p50"], ["p99", "p99"], ["slo", "SLO", { dash: [6, 4], width: 1 }]], true)),
    h("section", {}, chart("cache hit rate %", "apps", name, [["hit", "hits / lookups"]])),
    h("section", { id: "policy" }, h("h2", {}, `Selection policy: ${app.policy}`),
      h("div", { class: "actions" }, h("label", { for: "uid-input" }, "user id"), input,
        h("button", { type: "button", id: "uid-lookup", onclick: lookup }, "Look up")),
      panel),
  ];
}

function appInfo(app, o) {
  if (!app) return h("p", {}, "");
  const s = state.series.apps[app.name];
  return h("div", { class: "figures" },
    figure(`${fmt(app.latency_slo_micros / 1000, 0)} ms`, "SLO"), figure(app.default_output, "default output"),
    figure(app.policy, "policy"), figure(JSON.stringify(app.policy_config), "policy config"),
    figure(app.linked_models.join(", ") || "none", "linked models"),
    figure(app.cache_enabled ? "on" : "off", "cache"),
    figure(fmt(last(s, "rps")), "req/s", { dataset: { live: "rps" } }),
    figure(fmt(last(s, "defaults")), "defaults/s", { dataset: { live: "defaults" } }));
}

async function showLearned(name, uid, panel) {
  try {
    const l = await call("GET", `/dashboard/api/apps/${enc(name)}/learned?uid=${enc(uid)}`);
    if (!l.needs_state) {
      panel.replaceChildren(h("p", { class: "muted" }, `${l.policy} keeps no per-user state: it learns nothing from feedback`));
      return;
    }
    const models = Object.keys(l.figures);
    const columns = [...new Set(models.flatMap((m) => Object.keys(l.figures[m])))];
    const main = columns[0];
    const top = Math.max(...models.map((m) => Math.abs(l.figures[m][main] || 0)), 1e-12);
    panel.replaceChildren(...[
      h("p", { class: "muted" }, l.source === "store" ? `learned from user ${l.uid}'s feedback`
        : `no feedback from user ${l.uid} yet: the policy's starting point`),
      models.length ? h("table", { id: "learned-table" },
        h("tr", {}, [h("th", {}, "model")].concat(columns.map((c) => h("th", {}, c)), [h("th", {}, "")])),
        models.map((m) => h("tr", { dataset: { model: m } }, h("td", {}, m),
          columns.map((c) => h("td", { class: "num", dataset: { figure: c } }, fmt(l.figures[m][c], 3))),
          h("td", { style: "width: 30%" }, h("div", { class: "bar", style: `width: ${(100 * Math.abs(l.figures[m][main] || 0) / top).toFixed(1)}%` })))))
        : h("p", { class: "muted" }, "the policy describes nothing for this state"),
      l.state ? h("details", {}, h("summary", {}, `stored state (${l.state_bytes} bytes)`), h("pre", {}, JSON.stringify(l.state, null, 1))) : null,
    ].filter((el) => el !== null));
  } catch (err) {
    if (!(err instanceof Refused)) panel.replaceChildren(h("p", { class: "error", id: "learned-error" }, err.message));
  }
}

// -- a model version ----------------------------------------------------------------------------------------------
function modelPage(name, version, o) {
  const m = o.models.find((x) => x.model_name === name && x.model_version === version);
  if (!m) return [h("section", { class: "wide" }, h("p", { class: "error" }, `no model version ${name}:${version}`))];
  const key = `${name}:${version}`;
  const count = h("input", { type: "number", min: "0", step: "1", value: String(m.num_replicas), id: "scale-input" });
  return [
    h("section", { class: "wide" }, h("h2", {}, `Model ${key}`), refreshable("model-info", ["model", name, version], o),
      h("div", { class: "actions" },
        h("label", { for: "scale-input" }, "replicas"), count,
        h("button", { type: "button", id: "scale-button", onclick: () => action(
          `Scale ${key} to ${count.value} replicas?`, "POST", "/admin/set_num_replicas",
          { model_name: name, model_version: version, num_replicas: Number(count.value) }) }, "Scale"))),
    h("section", {}, chart("answered/s", "models", key, [["rps", "inputs/s"]])),
    h("section", {}, chart("batch size (mean)", "models", key, [["batch", "inputs per batch"]])),
    h("section", {}, chart("queue length", "models", key, [["queue", "tasks queued"], ["replicas", "replicas"]])),
    h("section", {}, chart("queue time ms", "models", key, [["qp50", "p50"], ["qp99", "p99"]], true)),
    h("section", {}, chart("compute time ms (per batch)", "models", key, [["cp50", "p50"], ["cp99", "p99"]], true)),
    h("section", {}, h("h2", {}, "Autoscaler"), refreshable("model-autoscaler", ["model", name, version], o)),
    h("section", { class: "wide" }, h("h2", {}, "Replicas"), refreshable("model-replicas", ["model", name, version], o)),
    h("section", { class: "wide" }, h("h2", {}, "Rollout"), refreshable("model-rollout", ["model", name, version], o)),
  ];
}

function modelInfo(m) {
  if (!m) return h("p", {}, "");
  return h("div", {}, h("div", { class: "figures" }, figure(m.is_current_version ? "yes" : "no", "current version"),
    figure(m.batch_size === -1 ? "adaptive" : String(m.batch_size), "batch size setting"),
    figure(String(m.num_replicas), "replicas wanted"), figure(m.input_type, "input type"),
    figure(m.container_name, "container")),
  h("div", { class: "actions" }, h("button", { type: "button", id: "current-button", disabled: m.is_current_version,
    onclick: () => action(`Make ${m.model_version} the current version of ${m.model_name}?`, "POST",
      "/admin/set_model_version", { model_name: m.model_name, model_version: m.model_version }) },
  "Set as current version")));
}

function autoscalerPanel(m) {
  if (!m || !m.autoscaling) return h("p", { class: "muted" }, "autoscaling is off for this version");
  const d = m.autoscaler;
  if (!d) return h("p", { class: "muted" }, `on (${JSON.stringify(m.autoscaling)}); no decision yet`);
  return h("div", {}, h("div", { class: "figures" }, figure(String(d.desired), "desired"), figure(d.action, "last action"),
    figure(fmt(d.load_per_replica, 2), "load per replica"), figure(fmt(ms(d.p99_latency_s)), "p99 ms")),
    h("p", {}, d.reason), d.error ? h("p", { class: "error" }, d.error) : null);
}

// -- logs --------------------------------------------------------------------------------------------------------
function logsPage(o) {
  const select = h("select", { id: "log-file" }, o.logs.map((f) => h("option", { value: f, selected: f === state.logFile }, f)));
  const lines = h("input", { type: "number", min: "1", max: "1000", value: "100", id: "log-lines" });
  const out = h("pre", { id: "log-text" }, "");
  const show = async () => {
    state.logFile = select.value;
    try {
      const answer = await call("GET", `/dashboard/api/logs?file=${enc(select.value)}&lines=${enc(lines.value)}`);
      out.textContent = answer.lines.join("\n") || "(empty)";
    } catch (err) {
      if (!(err instanceof Refused)) out.textContent = err.message;
    }
  };
  if (o.logs.length) show();
  return [h("section", { class: "wide" }, h("h2", {}, "Logs"),
    o.logs.length ? h("div", { class: "actions" }, select, h("label", { for: "log-lines" }, "lines"), lines,
      h("button", { type: "button", onclick: show }, "Show")) : h("p", { class: "muted" }, "no log files"), out)];
}

function renderLiveFigures() {
  for (const el of document.querySelectorAll("[data-live]")) {
    const row = el.closest("[data-app]");
    const name = row ? row.dataset.app : (location.hash.startsWith("#/app/") ? decodeURIComponent(location.hash.slice(6)) : null);
    if (!name) continue;
    const v = fmt(last(state.series.apps[name], el.dataset.live));
    const target = el.tagName === "TD" ? el : el.querySelector("b");
    if (target && target.textContent !== v) target.textContent = v;
  }
}

// -- start ------------------------------------------------------------------------------------------------------
function start() {
  if (typeof uPlot === "undefined") {
    notice("The charting library is missing: reinstall clipper-dashboard (its build vendors uPlot with npm).", false);
    return;
  }
  $("token-button").addEventListener("click", () => { $("token-form").hidden = !$("token-form").hidden; $("token-input").focus(); });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value);
    $("token-input").value = "";
    $("token-form").hidden = true;
    $("token-message").textContent = "";
    pollOverview();
    pollLive();
  });
  window.addEventListener("hashchange", () => { renderNav(); render(); });
  pollOverview();
  pollLive();
  setInterval(pollLive, LIVE_MS);
  setInterval(pollOverview, OVERVIEW_MS);
}

start();
