// MLPipe UI: the actions of a pipe page and of the job panel (dry run, run with -j and --set,
// cancel, rerun, force). Each is a POST to the API, which starts the same `ml` command a terminal
// would; the page shows that command, whether it still runs, and its output.
"use strict";

// POST/PUT with a JSON body; the browser adds the session cookie and the page's Origin.
async function send(method, path, body) {
  const resp = await fetch("api/" + path, { method, credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
  const data = await resp.json().catch(() => ({ error: resp.statusText }));
  return { ok: resp.ok, status: resp.status, data };
}

// A typed input for one parameter: a select for bools and choices, a number field for numbers.
function paramInput(spec, value, attrs) {
  const text = (v) => v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  if (spec && (spec.choices || spec.type === "bool")) {
    const options = spec.choices || [true, false];
    const pick = el("select", attrs, el("option", { value: "" }, spec.has_default ? `(default: ${text(spec.default)})` : "(not given)"),
      options.map((o) => el("option", { value: JSON.stringify(o), selected: value !== undefined && JSON.stringify(value) === JSON.stringify(o) }, text(o))));
    pick.typedValue = () => pick.value === "" ? undefined : JSON.parse(pick.value);
    return pick;
  }
  const numeric = spec && (spec.type === "int" || spec.type === "float");
  const input = el("input", { ...attrs, type: numeric ? "number" : "text", step: spec && spec.type === "float" ? "any" : null,
    value: text(value), placeholder: spec ? `${spec.type}${spec.has_default ? ", default " + text(spec.default) : spec.required ? ", required" : ""}` : "" });
  input.typedValue = () => typedFrom(spec, input.value);
  return input;
}

// What the user typed, as the module's type reads it (a value that does not parse stays text:
// the server's check names the field and the problem).
function typedFrom(spec, raw) {
  if (raw === "") return undefined;
  const kind = spec ? spec.type : "str";
  if ((kind === "int" && /^-?\d+$/.test(raw.trim())) || (kind === "float" && raw.trim() !== "" && !Number.isNaN(Number(raw)))) return Number(raw);
  if (kind === "list" || kind === "dict") { try { return JSON.parse(raw); } catch { return raw; } }
  return raw;
}

function pipeActions(pipeId, pipePath, getGraph) {
  const errors = el("div", { id: "action-errors", "aria-live": "polite" });
  const status = el("div", { id: "action-status", "aria-live": "polite" });
  const dryBox = el("div", { id: "dry-run" });
  const jobs = el("input", { id: "run-jobs", type: "number", min: "1", placeholder: "JOBS", size: "4" });
  const force = el("input", { id: "run-force", type: "checkbox" });
  const sets = el("div", { id: "overrides" });
  let modules = null, polling = null;

  async function addOverride() {
    modules = modules || Object.fromEntries((await api("modules?detail=1")).map((m) => [m.module, m]));
    const names = [...new Set(getGraph().nodes.map((n) => n.job))];
    const moduleOf = Object.fromEntries(getGraph().nodes.map((n) => [n.job, n.module]));
    const jobPick = el("select", { class: "set-job" }, names.map((n) => el("option", { value: n }, n)));
    const paramPick = el("select", { class: "set-param" });
    const slot = el("span", {});
    const row = el("div", { class: "override" }, "--set ", jobPick, ".", paramPick, " = ", slot, " ",
      el("button", { title: "remove", on: { click: () => row.remove() } }, "\u00d7"));
    const fillParams = () => {
      const params = (modules[moduleOf[jobPick.value]] || {}).parameters || {};
      paramPick.replaceChildren(...Object.keys(params).map((p) => el("option", { value: p }, p)));
      fillValue();
    };
    const fillValue = () => {
      const spec = ((modules[moduleOf[jobPick.value]] || {}).parameters || {})[paramPick.value];
      row.value = paramInput(spec, undefined, { class: "set-value" });
      slot.replaceChildren(row.value);
    };
    jobPick.addEventListener("change", fillParams);
    paramPick.addEventListener("change", fillValue);
    fillParams();
    sets.append(row);
  }

  const overrides = () => Object.fromEntries([...sets.querySelectorAll(".override")]
    .filter((r) => r.value && r.value.typedValue() !== undefined)
    .map((r) => [`${r.querySelector(".set-job").value}.${r.querySelector(".set-param").value}`, r.value.typedValue()]));

  function showError(reply) {
    const problems = reply.data.problems || [];
    errors.replaceChildren(el("p", { class: "error", id: "action-error" }, reply.data.error),
      ...(problems.length ? [el("ul", { class: "problems" }, problems.map((p) => el("li", {}, p.text)))] : []));
  }

  async function dryRun() {
    const reply = await send("POST", `pipes/${pipePath}/dryrun`, { set: overrides() });
    if (!reply.ok) return showError(reply);
    errors.replaceChildren();
    dryBox.replaceChildren(el("h2", {}, "Dry run ", el("span", { class: "muted" }, `(ml runpipe -n, at ${new Date().toLocaleTimeString()})`)),
      table(["job", "status", "action", "reasons"], reply.data.jobs.map((j) => ({ key: j.name,
        cells: [j.name, badge(j.status === "up-to-date" ? "up-to-date" : j.action === "pull" ? "pull" : "stale", j.status), j.action,
          j.reasons.join("; ")] }))));
  }

  async function start(what, body) {
    const reply = await send("POST", what, body);
    if (!reply.ok) return showError(reply);
    errors.replaceChildren();
    follow();
  }

  async function follow() {
    clearInterval(polling);
    const tick = async () => {
      const a = await api(`pipes/${pipePath}/action`);
      if (!a.kind) return;
      const state = a.running ? "running" : a.exit_code === 0 ? "succeeded" : a.exit_code === 75 ? "skipped" : "failed";
      const words = a.running ? "running" : a.exit_code === 0 ? "succeeded" : `${a.exit_code === 75 ? "busy" : "failed"}, exit ${a.exit_code}`;
      status.replaceChildren(el("p", {}, el("code", {}, a.command.join(" ")), " ",
        el("span", { id: "action-state", "data-state": state, class: `badge st-${state}` }, words)),
        el("pre", { class: "log", id: "action-output" }, a.output || "(no output yet)"));
      if (!a.running) clearInterval(polling);
    };
    await tick();
    polling = every(POLL_MS, tick);
  }

  async function cancel() {
    const reply = await send("POST", `pipes/${pipePath}/cancel`);
    if (!reply.ok) return showError(reply);
    errors.replaceChildren(el("p", { id: "cancel-result" }, `canceled: ${reply.data.jobs.map((j) => `${j.job} ${j.status}`).join(", ") || "the run"}`));
  }

  const run = () => start(`pipes/${pipePath}/run`, { set: overrides(), force: force.checked,
    ...(jobs.value ? { jobs: Number(jobs.value) } : {}) });
  follow(); // a run this server started earlier for the pipe
  return el("div", { class: "actions" },
    el("div", { class: "toolbar" },
      el("button", { id: "btn-dry-run", on: { click: dryRun } }, "Dry run"),
      el("button", { id: "btn-run", class: "primary", on: { click: run } }, "Run"),
      el("label", {}, "-j ", jobs), el("label", {}, force, " --force"),
      el("button", { id: "btn-add-set", on: { click: addOverride } }, "+ --set"),
      el("button", { id: "btn-cancel", on: { click: cancel } }, "Cancel run"),
      el("a", { href: "#/edit/" + encodeURIComponent(pipeId), id: "edit-pipe" }, "Edit pipe")),
    sets, errors, status, dryBox);
}

// Rerun (as `ml runjob ID`) or force one job, from its panel; then follow that command.
function jobActions(rec) {
  const out = el("span", { id: "job-action", class: "muted" });
  const pipePath = rec.pipe.split("/").map(encodeURIComponent).join("/");
  let polling = null;
  const go = async (force) => {
    const reply = await send("POST", `jobs/${rec.job_id}/rerun`, { force });
    if (!reply.ok) {
      out.replaceChildren(el("span", { class: "error" }, reply.data.error));
      return;
    }
    clearInterval(polling);
    polling = every(POLL_MS, async () => {
      const a = await api(`pipes/${pipePath}/action`);
      const state = a.running ? "running" : a.exit_code === 0 ? "succeeded" : "failed";
      out.replaceChildren(el("code", {}, a.command.join(" ")), " ",
        el("span", { id: "job-action-state", "data-state": state, class: `badge st-${state}` },
          a.running ? "running" : a.exit_code === 0 ? "succeeded" : `failed, exit ${a.exit_code}`));
      if (!a.running) clearInterval(polling);
    });
  };
  return el("div", { class: "toolbar" },
    el("button", { id: "btn-rerun", on: { click: () => go(false) } }, "Rerun"),
    el("button", { id: "btn-force", on: { click: () => go(true) } }, "Force"), out);
}
