// MLPipe UI: one hand-written script, no framework. Every text from the server goes into the page
// through textContent (never innerHTML), so job names, parameters and logs cannot inject markup.
"use strict";

const POLL_MS = 1000;
const main = document.getElementById("main");
const panel = document.getElementById("panel");
const live = document.getElementById("live");
let timers = [];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}

const EXPORT = window.MLPIPE_EXPORT; // set by static/data.js in a static export (`ml ui --export DIR`)

// Bumped by every route change. A view that awaits its data after the user has moved on (a slow
// pipe list answering after the editor drew) must not draw over the newer view: its api() calls
// then never settle, so the stale view stops where it is and is garbage-collected.
let routeGeneration = 0;

async function api(path) {
  const generation = routeGeneration;
  let body;
  try {
    body = await fetchApi(path);
  } catch (e) {
    if (generation === routeGeneration) throw e; // a stale view shows no error either
  }
  return generation === routeGeneration ? body : new Promise(() => {});
}

async function fetchApi(path) {
  if (EXPORT) {
    const hit = EXPORT.responses[path];
    if (!hit) throw new Error("not in this static export: " + path);
    if (hit.error) throw new Error(hit.error);
    return hit.json ? JSON.parse(hit.body) : hit.body;
  }
  const resp = await fetch("api/" + path, { credentials: "same-origin" });
  const kind = resp.headers.get("Content-Type") || "";
  const body = kind.startsWith("application/json") ? await resp.json() : await resp.text();
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}

function every(ms, fn) {
  const id = setInterval(fn, ms);
  timers.push(id);
  return id;
}

function table(headers, rows, onClick) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {
      class: onClick ? "clickable" : null, "data-key": r.key,
      on: onClick ? { click: () => onClick(r) } : {},
    }, r.cells.map((c) => el("td", {}, c))))));
}

const badge = (state, text) => el("span", { class: `badge st-${state}` }, text || state);
const size = (n) => n == null ? "-" : n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} kB`
  : `${(n / (1 << 20)).toFixed(1)} MB`;
const secs = (s) => s == null ? "-" : `${s.toFixed(1)}s`;
const short = (id) => id ? id.slice(0, 12) : "-";
const show = (v) => typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);

// -- routing ----------------------------------------------------------------------------------
function route() {
  routeGeneration += 1;
  timers.forEach(clearInterval);
  timers = [];
  live.textContent = "";
  const hash = decodeURIComponent(location.hash.slice(1) || "/");
  const [, view, ...rest] = hash.split("/");
  const arg = rest.join("/");
  document.title = view === "pipe" ? `${arg} \u2013 MLPipe` : view ? `${view} \u2013 MLPipe` : "MLPipe";
  const views = { "": pipesPage, pipe: () => pipePage(arg), jobs: jobsPage, modules: modulesPage,
    metrics: metricsPage, job: () => { jobsPage(); openJob(arg); }, edit: () => editorPage(arg),
    new: () => editorPage(null) };
  (views[view] || pipesPage)().catch((e) => main.replaceChildren(el("p", { class: "error" }, e.message)));
}
window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);

// -- pipes ------------------------------------------------------------------------------------
async function pipesPage() {
  const pipes = await api("pipes");
  main.replaceChildren(el("h1", {}, "Pipes"), table(["pipe", "app", "jobs", "last run", "latest records"],
    pipes.map((p) => ({ key: p.pipe, cells: [
      el("a", { href: "#/pipe/" + encodeURIComponent(p.pipe) }, p.pipe), p.app,
      p.jobs ?? el("span", { class: "error" }, "invalid: " + p.error), p.last_run || "never",
      Object.entries(p.counts || {}).map(([s, n]) => [badge(s, `${n} ${s}`), " "])] })),
    (r) => { location.hash = "#/pipe/" + encodeURIComponent(r.key); }));
}

// -- one pipe: the DAG, live --------------------------------------------------------------------
async function pipePage(pipeId) {
  const pipePath = pipeId.split("/").map(encodeURIComponent).join("/");
  const filters = { failed: false, uptodate: false, collapse: false };
  const check = (id, label, key) => el("label", {}, el("input", { type: "checkbox", id, on: { change: (e) => {
    filters[key] = e.target.checked;
    if (key === "collapse") load(); else applyFilters();
  } } }), " ", label);
  const dag = el("div", { id: "dag", tabindex: "0" });
  const summary = el("span", { id: "summary", class: "muted" });
  const jobsTable = el("div", { id: "pipe-jobs" });
  const zoom = (f) => () => view && view.zoom(f);
  main.replaceChildren(el("h1", {}, pipeId), el("div", { class: "toolbar" },
    check("only-failed", "only failed", "failed"), check("hide-up-to-date", "hide up to date", "uptodate"),
    check("collapse-sweeps", "collapse sweeps", "collapse"),
    el("button", { on: { click: zoom(1.25) }, title: "zoom in" }, "+"),
    el("button", { on: { click: zoom(0.8) }, title: "zoom out" }, "\u2212"),
    el("button", { on: { click: () => view && view.fit() } }, "fit"), summary),
  ...(EXPORT ? [] : [pipeActions(pipeId, pipePath, () => graph)]), dag, jobsTable);
  let graph = null, view = null, lastRuns = null;

  async function load() {
    const q = filters.collapse ? "?collapse=1" : "";
    const [svgText, data, runs] = await Promise.all([api(`pipes/${pipePath}/graph.svg${q}`),
      api(`pipes/${pipePath}/graph${q}`), api(`pipes/${pipePath}/runs`)]);
    lastRuns = JSON.stringify(runs.jobs); // the records this drawing already reflects
    const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
    const svg = document.importNode(doc.documentElement, true);
    dag.replaceChildren(svg);
    view = panZoom(dag, svg);
    svg.addEventListener("click", (e) => {
      const g = e.target.closest(".node");
      if (g) selectNode(g.dataset.id);
    });
    svg.addEventListener("keydown", (e) => {
      const g = e.target.closest(".node");
      if (g && e.key === "Enter") selectNode(g.dataset.id);
    });
    update(data);
  }

  function update(data) {
    graph = data;
    const byId = new Map(data.nodes.map((n) => [n.id, n]));
    for (const g of dag.querySelectorAll(".node")) {
      const n = byId.get(g.dataset.id);
      if (!n) continue;
      g.setAttribute("class", `node st-${n.state}`);
      g.dataset.state = n.state;
      g.dataset.status = n.status || "";
      g.dataset.action = n.action || "";
      const members = n.sweep && n.sweep.members ? ` (${n.sweep.members} members)` : "";
      g.querySelector(".state").textContent = data.labels[n.state] + members;
    }
    const counts = {};
    data.nodes.forEach((n) => { counts[n.state] = (counts[n.state] || 0) + 1; });
    summary.replaceChildren(...Object.entries(counts).map(([s, c]) => [badge(s, `${c} ${data.labels[s]}`), " "]).flat());
    jobsTable.replaceChildren(el("h2", {}, "Jobs"), table(["job", "state", "module", "reasons"],
      data.nodes.map((n) => ({ key: n.id, cells: [n.id, badge(n.state, data.labels[n.state]), n.module,
        n.reasons.join("; ")] })), (r) => selectNode(r.key)));
    applyFilters();
    live.textContent = EXPORT ? `static export, ${EXPORT.created}` : "live \u00b7 updated " + new Date().toLocaleTimeString();
  }

  function applyFilters() {
    if (!graph) return;
    const hidden = new Set(graph.nodes.filter((n) => (filters.failed && n.state !== "failed")
      || (filters.uptodate && n.state === "up-to-date")).map((n) => n.id));
    for (const g of dag.querySelectorAll(".node")) g.classList.toggle("hide", hidden.has(g.dataset.id));
    for (const p of dag.querySelectorAll("path")) p.classList.toggle("hide", hidden.has(p.dataset.from) || hidden.has(p.dataset.to));
    for (const tr of jobsTable.querySelectorAll("tbody tr")) tr.classList.toggle("hide", hidden.has(tr.dataset.key));
  }

  function selectNode(id) {
    const n = graph.nodes.find((x) => x.id === id);
    if (!n) return;
    dag.querySelectorAll(".node.selected").forEach((g) => g.classList.remove("selected"));
    const g = [...dag.querySelectorAll(".node")].find((x) => x.dataset.id === id);
    if (g) g.classList.add("selected");
    openNode(n, graph.labels);
  }

  async function poll() {
    try {
      const runs = JSON.stringify((await api(`pipes/${pipePath}/runs`)).jobs);
      if (runs !== lastRuns) { // a record changed: ask for the dry run again (only then: it costs more)
        lastRuns = runs;
        update(await api(`pipes/${pipePath}/graph${filters.collapse ? "?collapse=1" : ""}`));
      }
    } catch (e) {
      live.textContent = "not updating: " + e.message;
    }
  }

  await load();
  if (!EXPORT) every(POLL_MS, poll);
}

function panZoom(box, svg) {
  const full = svg.viewBox.baseVal;
  const whole = { x: full.x, y: full.y, w: full.width, h: full.height };
  let vb = { ...whole };
  const set = () => svg.setAttribute("viewBox", `${vb.x} ${vb.y} ${vb.w} ${vb.h}`);
  const fit = (minScale = 0) => {
    // a small pipe gets a small box; a big one the usual 62% of the window
    box.style.height = Math.min(window.innerHeight * 0.62, Math.max(140, whole.h + 24)) + "px";
    const r = box.getBoundingClientRect();
    const scale = Math.max(Math.min(r.width / whole.w, r.height / whole.h, 1.5), minScale);
    vb = { x: whole.x, y: whole.y, w: r.width / scale, h: r.height / scale };
    set();
  };
  const zoom = (f, cx = vb.x + vb.w / 2, cy = vb.y + vb.h / 2) => {
    vb = { x: cx - (cx - vb.x) / f, y: cy - (cy - vb.y) / f, w: vb.w / f, h: vb.h / f };
    set();
  };
  // listeners on the svg, which each load replaces: none pile up on the box
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = box.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, vb.x + (e.clientX - r.left) / r.width * vb.w,
      vb.y + (e.clientY - r.top) / r.height * vb.h);
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, vb: { ...vb } }; });
  svg.addEventListener("pointerup", () => { drag = null; });
  svg.addEventListener("pointerleave", () => { drag = null; });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const r = box.getBoundingClientRect();
    vb = { ...drag.vb, x: drag.vb.x - (e.clientX - drag.x) * vb.w / r.width, y: drag.vb.y - (e.clientY - drag.y) * vb.h / r.height };
    set();
  });
  fit(0.6); // a 1,000-job pipe opens readable, at its top left; "fit" shows all of it
  return { zoom, fit: () => fit() };
}

// -- the job panel ----------------------------------------------------------------------------
const closer = () => el("button", { class: "close", title: "close", "aria-label": "close",
  on: { click: () => { panel.hidden = true; panel.replaceChildren(); } } }, "\u00d7");

function openNode(node, labels) {
  panel.hidden = false;
  const head = [closer(), el("h1", {}, node.id), badge(node.state, labels[node.state]),
    el("dl", { class: "kv" }, el("dt", {}, "module"), el("dd", {}, node.module),
      el("dt", {}, "dry run"), el("dd", {}, `${node.status || "-"} / ${node.action || "-"}`),
      el("dt", {}, "job id"), el("dd", {}, node.job_id || "(not known until upstream jobs run)"),
      el("dt", {}, "why stale"), el("dd", {}, node.reasons.length ? node.reasons.join("; ") : "-"))];
  panel.replaceChildren(...head);
  if (node.last_job_id) showRecord(node.last_job_id, head);
  else panel.append(el("p", { class: "muted" }, "No run recorded yet."));
}

function openJob(jobId) {
  panel.hidden = false;
  panel.replaceChildren(el("p", {}, "Loading…"));
  showRecord(jobId, []);
}

async function showRecord(jobId, head) {
  let rec;
  try {
    rec = await api("jobs/" + jobId);
  } catch (e) {
    panel.replaceChildren(...head, el("p", { class: "error" }, e.message));
    return;
  }
  const kv = (pairs) => pairs.length ? el("dl", { class: "kv" }, pairs.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]).flat())
    : el("p", { class: "muted" }, "(none)");
  const refs = rec.input_refs || {};
  const logBox = el("pre", { class: "log", id: "log" });
  const follow = el("input", { type: "checkbox", id: "follow", checked: rec.status === "running" });
  const tabs = el("span", { class: "tabs" });
  let stream = rec.status === "failed" ? "stderr" : "stdout", offset = null, loading = false;
  const pick = (s) => {
    stream = s; offset = null; logBox.textContent = "";
    tabs.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.stream === s)));
    readLog();
  };
  ["stdout", "stderr"].forEach((s) => tabs.append(el("button", { "data-stream": s, id: "log-" + s, on: { click: () => pick(s) } }, s)));
  async function readLog() {
    if (loading) return;
    loading = true;
    try {
      const chunk = await api(`jobs/${rec.job_id}/log?stream=${stream}` + (offset === null ? "" : `&offset=${offset}`));
      if (offset === null && chunk.offset > 0) logBox.append(`(… the first ${chunk.offset} bytes are not shown)\n`);
      logBox.append(chunk.text);
      if (offset === null && !chunk.text) logBox.append("(empty)");
      offset = chunk.next_offset;
      if (follow.checked) logBox.scrollTop = logBox.scrollHeight;
    } finally {
      loading = false;
    }
  }
  panel.replaceChildren(...(head.length ? head : [closer(), el("h1", {}, rec.job)]),
    el("h2", {}, "Run ", el("code", {}, short(rec.job_id)), " ", badge(rec.status)),
    ...(EXPORT ? [] : [jobActions(rec)]),
    kv([["pipe", rec.pipe], ["module", rec.module], ["started", rec.started_iso || "-"],
      ["duration", secs(rec.duration_s)], ["exit code", rec.exit_code ?? "-"], ["host", rec.host || "-"],
      ...(rec.error ? [["error", el("span", { class: "error" }, rec.error)]] : []),
      ...(rec.sweep ? [["sweep", show(rec.sweep)]] : [])]),
    el("h2", {}, "Parameters"), kv(Object.entries(rec.parameters || {}).map(([k, v]) => [k, show(v)])),
    el("h2", {}, "Inputs"), table(["input", "from", "fingerprint"], Object.entries(rec.inputs || {}).map(([k, v]) => ({
      key: k, cells: [k, (refs[k] || []).join(", "), show(v)] }))),
    el("h2", {}, "Outputs"), table(["output", "path", "size"], Object.entries(rec.outputs || {}).map(([k, o]) => ({
      key: k, cells: [k, el("code", {}, o.path), size(o.size)] }))),
    ...Object.entries(rec.outputs || {}).filter(([, o]) => o.preview != null).map(([k, o]) =>
      el("details", { class: "preview", open: true }, el("summary", {}, `${k} (first ${size(o.preview.length)})`),
        el("pre", { class: "log" }, o.preview))),
    ...(rec.metrics ? [el("h2", {}, "Metrics"), kv(Object.entries(rec.metrics).map(([k, v]) => [k, show(v)]))] : []),
    el("h2", {}, "Log ", tabs, " ", el("label", {}, follow, " follow")), logBox,
    el("h2", {}, "History"), table(["job_id", "status", "started", "duration"], rec.history.map((h) => ({
      key: h.job_id, cells: [el("code", {}, short(h.job_id)), badge(h.status), h.started || "-", secs(h.duration_s)] })),
    (r) => openJob(r.key)));
  pick(stream);
  if (!EXPORT) every(POLL_MS, () => { if (follow.checked && panel.contains(logBox)) readLog(); });
}

// -- lists ------------------------------------------------------------------------------------
async function jobsPage() {
  const jobs = await api("jobs?limit=1000");
  main.replaceChildren(el("h1", {}, "Jobs"), el("p", { class: "muted" }, "The newest 1,000 records."),
    table(["job_id", "pipe", "job", "module", "status", "started", "duration"], jobs.map((j) => ({
      key: j.job_id, cells: [el("code", {}, short(j.job_id)), j.pipe, j.job, j.module, badge(j.status), j.started || "-",
        secs(j.duration_s)] })), (r) => openJob(r.key)));
}

async function modulesPage() {
  const mods = await api("modules");
  const ports = (o) => Object.entries(o || {}).map(([n, t]) => `${n}: ${t}`).join(", ");
  main.replaceChildren(el("h1", {}, "Modules"), table(["module", "inputs", "outputs", "parameters"], mods.map((m) => ({
    key: m.module, cells: m.error ? [m.module, el("span", { class: "error" }, m.error), "", ""]
      : [m.module, ports(m.inputs), ports(m.outputs),
        Object.entries(m.parameters).map(([n, p]) => `${n}: ${p.type} = ${show(p.default)}`).join(", ")] }))));
}

async function metricsPage() {
  const m = await api("metrics");
  if (!m.rows.length) {
    main.replaceChildren(el("h1", {}, "Metrics"), el("p", { class: "muted" },
      "No job record carries metrics yet (a module's output of type metrics fills them)."));
    return;
  }
  const { params, metrics } = m.columns;
  const plotBox = el("div", { id: "plot" });
  const pickMetric = el("select", { id: "plot-metric" }, metrics.map((k) => el("option", { value: k }, k)));
  const pickX = el("select", { id: "plot-x" }, el("option", { value: "" }, "time (started)"),
    params.map((k) => el("option", { value: k }, k)));
  const draw = () => plotBox.replaceChildren(plot(m.rows, pickMetric.value, pickX.value));
  pickMetric.addEventListener("change", draw);
  pickX.addEventListener("change", draw);
  main.replaceChildren(el("h1", {}, "Metrics"),
    table(["pipe", "job", "job_id", ...params, ...metrics], m.rows.map((r) => ({ key: r.job_id, cells: [r.pipe, r.job,
      el("code", {}, short(r.job_id)), ...params.map((k) => r.params[k] === undefined ? "" : show(r.params[k])),
      ...metrics.map((k) => r.metrics[k] === undefined ? "" : show(r.metrics[k]))] })), (r) => openJob(r.key)),
    el("h2", {}, "Plot ", pickMetric, " against ", pickX), plotBox);
  draw();
}

function plot(rows, metric, x) {
  // one point per row that has a numeric value for both axes; drawn as SVG elements, no library
  const NS = "http://www.w3.org/2000/svg";
  const pts = rows.map((r) => [x ? r.params[x] : Date.parse(r.started), r.metrics[metric]])
    .filter(([a, b]) => typeof a === "number" && typeof b === "number" && !Number.isNaN(a));
  const svg = document.createElementNS(NS, "svg");
  const W = 520, H = 260, P = 40;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
  };
  add("rect", { x: 0, y: 0, width: W, height: H, fill: "#fff", stroke: "#ddd" });
  if (!pts.length) {
    add("text", { x: P, y: H / 2 }, "no numeric values to plot");
    return svg;
  }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (v) => P + (x1 === x0 ? 0.5 : (v - x0) / (x1 - x0)) * (W - 2 * P);
  const sy = (v) => H - P - (y1 === y0 ? 0.5 : (v - y0) / (y1 - y0)) * (H - 2 * P);
  add("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#888" });
  add("line", { x1: P, y1: P, x2: P, y2: H - P, stroke: "#888" });
  add("text", { x: P, y: H - 10 }, `${x || "time"}: ${x ? x0 : new Date(x0).toLocaleString()} \u2026 ${x ? x1 : new Date(x1).toLocaleString()}`);
  add("text", { x: 4, y: 16 }, `${metric}: ${y0} \u2026 ${y1}`);
  pts.forEach(([a, b]) => add("circle", { cx: sx(a), cy: sy(b), r: 4, fill: "#1565c0" }, undefined));
  return svg;
}
