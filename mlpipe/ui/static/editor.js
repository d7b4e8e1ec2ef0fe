// MLPipe UI: create or edit a pipe in a form (or as YAML text). Every change is checked by the
// server with `ml runpipe`'s own checks (POST api/pipes/validate), which also draws the DAG
// preview; each problem is shown next to its field. Save (PUT api/pipes/<id>) sends the md5 of
// the text the editor loaded: a file changed since then is not overwritten.
"use strict";

const isUri = (v) => typeof v === "string" && /^[a-z][a-z0-9+.-]*:\/\//i.test(v);

async function editorPage(pipeId) {
  if (EXPORT) {
    main.replaceChildren(el("p", { class: "muted" }, "Editing needs the live server: run `ml ui`."));
    return;
  }
  const [mods, pipes, source] = await Promise.all([api("modules?detail=1"), api("pipes"),
    pipeId ? api(`pipes/${pipeId.split("/").map(encodeURIComponent).join("/")}/source`) : null]);
  const modules = Object.fromEntries(mods.filter((m) => !m.error).map((m) => [m.module, m]));
  const apps = [...new Set([...mods.map((m) => m.module), ...pipes.map((p) => p.pipe)].map((id) => id.split("/")[0]))].sort();
  const ed = {
    id: pipeId, base: source ? source.md5 : null, comments: source ? source.comments : 0,
    data: source && source.data && typeof source.data === "object" ? source.data : { jobs: {} },
    mode: source && (!source.data || typeof source.data !== "object") ? "yaml" : "form", formChanged: false,
  };
  if (!ed.data.jobs || typeof ed.data.jobs !== "object") ed.data.jobs = {};
  const yamlText = el("textarea", { id: "yaml-text", spellcheck: "false", rows: "24" });
  yamlText.value = source ? source.yaml : "";
  const form = el("div", { id: "pipe-form" });
  const preview = el("div", { id: "preview", class: "preview" });
  const problemsBox = el("ul", { id: "problems", class: "problems" });
  const saveStatus = el("p", { id: "save-status", "aria-live": "polite" });
  const appPick = el("select", { id: "pipe-app" }, apps.map((a) => el("option", { value: a }, a)));
  const nameInput = el("input", { id: "pipe-name", placeholder: "NAME", size: "24" });
  const nameError = el("div", { class: "field-error", "data-for": "|pipe" });
  const commentNote = el("p", { id: "comment-note", class: "warning", hidden: true });
  if (pipeId) {
    const [app, , file] = pipeId.split("/");
    appPick.value = app;
    nameInput.value = file.replace(/\.yaml$/, "");
    appPick.disabled = nameInput.disabled = true;
  }
  const targetId = () => `${appPick.value}/pipe/${nameInput.value.trim()}.yaml`;
  const tab = (mode, label) => el("button", { id: `tab-${mode}`, "aria-pressed": String(ed.mode === mode), on: { click: () => switchTo(mode) } }, label);
  const tabs = el("span", { class: "tabs" }, tab("form", "Form"), tab("yaml", "YAML"));

  main.replaceChildren(el("h1", {}, pipeId ? `Edit ${pipeId}` : "New pipe"),
    el("div", { class: "toolbar" }, appPick, "/pipe/", nameInput, ".yaml", nameError, tabs),
    commentNote,
    el("div", { class: "toolbar" }, el("button", { id: "btn-validate", on: { click: () => validate(true) } }, "Validate"),
      el("button", { id: "btn-save", class: "primary", on: { click: save } }, "Save"),
      pipeId ? el("a", { href: "#/pipe/" + encodeURIComponent(pipeId) }, "back to the pipe") : ""),
    saveStatus, problemsBox, preview, form, yamlText);

  // -- the form: one fieldset per job ------------------------------------------------------------
  function dataNames(except) {
    return Object.entries(ed.data.jobs).filter(([n]) => n !== except)
      .flatMap(([, j]) => Object.values((j && j.output) || {}).filter((v) => typeof v === "string" && !isUri(v)));
  }

  function renderForm() {
    form.replaceChildren(...Object.entries(ed.data.jobs).map(([name, job]) => jobFieldset(name, job || {})),
      el("button", { id: "btn-add-job", on: { click: addJob } }, "+ add job"));
  }

  function changed() {
    ed.formChanged = true;
    schedule();
  }

  function addJob() {
    let n = Object.keys(ed.data.jobs).length + 1;
    while (ed.data.jobs["job" + n]) n += 1;
    ed.data.jobs["job" + n] = { module: Object.keys(modules)[0] || "" };
    renderForm();
    changed();
  }

  function renameJob(old, name) {
    ed.data.jobs = Object.fromEntries(Object.entries(ed.data.jobs).map(([k, v]) => [k === old ? name : k, v]));
  }

  function errorSlot(job, field) {
    return el("div", { class: "field-error", "data-for": `${job}|${field}` });
  }

  function jobFieldset(name, job) {
    const mod = modules[job.module];
    const nameField = el("input", { class: "job-name", value: name, "data-job": name, size: "18" });
    nameField.addEventListener("change", () => { renameJob(name, nameField.value.trim()); renderForm(); changed(); });
    const modulePick = el("select", { class: "job-module" },
      (modules[job.module] || !job.module ? [] : [el("option", { value: job.module }, job.module + " (unknown)")]),
      Object.keys(modules).map((m) => el("option", { value: m, selected: m === job.module }, m)));
    modulePick.addEventListener("change", () => { job.module = modulePick.value; renderForm(); changed(); });
    const rows = [];
    if (mod) {
      rows.push(el("p", { class: "muted interface" }, interfaceText(mod)));
      rows.push(el("h3", {}, "Inputs"), ...Object.entries(mod.inputs).map(([port, p]) => inputRow(name, job, port, p)));
      rows.push(el("h3", {}, "Outputs"), ...Object.entries(mod.outputs).map(([port, p]) => outputRow(name, job, port, p)));
      if (Object.keys(mod.parameters).length) {
        rows.push(el("h3", {}, "Parameters ", el("span", { class: "muted" }, "(empty: the default; sweep: comma-separated values)")),
          ...Object.entries(mod.parameters).map(([param, spec]) => paramRow(name, job, param, spec)));
      }
    }
    return el("fieldset", { class: "job", "data-job": name },
      el("legend", {}, "job ", nameField, " ", modulePick, " ",
        el("button", { class: "remove-job", title: "remove this job", on: { click: () => {
          delete ed.data.jobs[name]; renderForm(); changed(); } } }, "remove")),
      errorSlot(name, ""), errorSlot(name, "module"), ...rows);
  }

  function interfaceText(mod) {
    const ports = (o) => Object.entries(o).map(([n, p]) => `${n}: ${p.type}${p.optional ? " (optional)" : ""}`).join(", ") || "none";
    const params = Object.entries(mod.parameters).map(([n, p]) => `${n}: ${p.type}${p.has_default ? " = " + JSON.stringify(p.default) : ""}`).join(", ") || "none";
    return `inputs ${ports(mod.inputs)} \u00b7 outputs ${ports(mod.outputs)} \u00b7 parameters ${params}`;
  }

  function inputRow(jobName, job, port, spec) {
    const value = (job.input || {})[port];
    const field = `input.${port}`;
    if (value !== undefined && typeof value !== "string") { // a list, a pin or {collect: ...}: kept as written
      return el("div", { class: "field" }, el("label", {}, port), el("code", {}, JSON.stringify(value)),
        el("span", { class: "muted" }, " (edit it in the YAML tab)"), errorSlot(jobName, field));
    }
    const pick = el("select", { class: "input-pick", "data-field": `${jobName}|${field}`, "data-job": jobName,
      "data-empty": spec.optional ? "(none)" : "(choose)" });
    fillPicker(pick, value);
    const uri = el("input", { class: "input-uri", placeholder: "file://APP/data/... s3://... https://...", size: "36",
      value: pick.value === ":uri" ? value || "" : "", hidden: pick.value !== ":uri" });
    const store = () => {
      job.input = job.input || {};
      const v = pick.value === ":uri" ? uri.value.trim() : pick.value;
      if (v) job.input[port] = v; else delete job.input[port];
      changed();
    };
    pick.addEventListener("change", () => { uri.hidden = pick.value !== ":uri"; store(); });
    uri.addEventListener("input", store);
    return el("div", { class: "field" }, el("label", {}, `${port} `, el("span", { class: "muted" }, spec.type)), pick, uri,
      errorSlot(jobName, field));
  }

  // the data names other jobs output (kept up to date as outputs are named), then URI…
  function fillPicker(pick, value) {
    const names = dataNames(pick.dataset.job);
    const wasUri = pick.value === ":uri";
    const unknown = value && !isUri(value) && !names.includes(value)
      ? [el("option", { value }, `${value} (no job outputs it)`)] : [];
    pick.replaceChildren(el("option", { value: "" }, pick.dataset.empty),
      ...names.map((n) => el("option", { value: n }, n)), ...unknown, el("option", { value: ":uri" }, "URI\u2026"));
    pick.value = wasUri || isUri(value) ? ":uri" : value || "";
  }

  function outputRow(jobName, job, port, spec) {
    const field = `output.${port}`;
    const input = el("input", { class: "output-name", "data-field": `${jobName}|${field}`, value: (job.output || {})[port] || "",
      placeholder: `${jobName}_${port}`, size: "24" });
    input.addEventListener("input", () => {
      job.output = job.output || {};
      if (input.value.trim()) job.output[port] = input.value.trim(); else delete job.output[port];
      changed();
    });
    input.addEventListener("change", () => form.querySelectorAll(".input-pick")  // other jobs may pick the new name
      .forEach((pick) => fillPicker(pick, pick.value === ":uri" ? undefined : pick.value)));
    return el("div", { class: "field" }, el("label", {}, `${port} `, el("span", { class: "muted" }, spec.type)), input,
      errorSlot(jobName, field));
  }

  function paramRow(jobName, job, param, spec) {
    const field = `parameters.${param}`;
    const grid = (job.sweep && job.sweep.grid) || {};
    const input = paramInput(spec, (job.parameters || {})[param], { class: "param", "data-field": `${jobName}|${field}`, "data-param": param });
    const sweep = el("input", { class: "sweep", placeholder: "sweep: a, b, c", size: "18",
      value: grid[param] ? grid[param].join(", ") : "" });
    input.disabled = !!grid[param];
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => {
      job.parameters = job.parameters || {};
      const v = input.typedValue();
      if (v === undefined) delete job.parameters[param]; else job.parameters[param] = v;
      if (!Object.keys(job.parameters).length) delete job.parameters;
      changed();
    });
    sweep.addEventListener("input", () => {
      const values = sweep.value.split(",").map((v) => v.trim()).filter((v) => v !== "").map((v) => {
        const t = spec.type === "bool" ? (v === "true" ? true : v === "false" ? false : v) : typedFrom(spec, v);
        return t;
      });
      job.sweep = job.sweep || {};
      job.sweep.grid = { ...(job.sweep.grid || {}) };
      if (values.length) { job.sweep.grid[param] = values; if (job.parameters) delete job.parameters[param]; }
      else delete job.sweep.grid[param];
      if (!Object.keys(job.sweep.grid).length) delete job.sweep.grid;
      if (!Object.keys(job.sweep).length) delete job.sweep;
      input.disabled = values.length > 0;
      changed();
    });
    return el("div", { class: "field" }, el("label", {}, `${param} `, el("span", { class: "muted" }, spec.type)), input, sweep,
      errorSlot(jobName, field), errorSlot(jobName, `sweep.grid.${param}`));
  }

  // -- checking, previewing, saving ------------------------------------------------------------------
  let timer = null, asked = 0;
  const payload = () => ed.mode === "yaml" ? { yaml: yamlText.value } : { data: ed.data };
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(() => validate(false), 250);
  }
  yamlText.addEventListener("input", schedule);
  nameInput.addEventListener("input", schedule);
  appPick.addEventListener("change", schedule);

  async function validate(explicit) {
    const mine = ++asked;
    const reply = await send("POST", "pipes/validate", { pipe: targetId(), ...payload() });
    if (mine !== asked) return reply.ok ? reply.data : null; // a newer check will show its own answer
    if (!reply.ok) { saveStatus.replaceChildren(el("span", { class: "error" }, reply.data.error)); return null; }
    showProblems(reply.data.problems);
    if (reply.data.svg) {
      const doc = new DOMParser().parseFromString(reply.data.svg, "image/svg+xml");
      preview.replaceChildren(document.importNode(doc.documentElement, true));
    } else preview.replaceChildren(el("p", { class: "muted" }, "(no jobs yet)"));
    if (explicit) saveStatus.replaceChildren(reply.data.ok ? el("span", { id: "valid" }, "\u2713 valid: ml runpipe would accept it")
      : el("span", { class: "error" }, `${reply.data.problems.length} problem(s)`));
    return reply.data;
  }

  function showProblems(problems) {
    main.querySelectorAll(".field-error").forEach((s) => s.replaceChildren());
    main.querySelectorAll(".invalid").forEach((f) => f.classList.remove("invalid"));
    const loose = [];
    for (const p of problems) {
      const job = p.job || "", field = p.field || "";
      const keys = ed.mode === "form" ? [`${job}|${field}`, `${job}|${field.split(".").slice(0, 2).join(".")}`, `${job}|`] : [];
      if (!p.job && field === "pipe") keys.unshift("|pipe");
      const slot = keys.map((k) => main.querySelector(`.field-error[data-for="${CSS.escape(k)}"]`)).find(Boolean);
      if (slot) {
        slot.append(el("div", {}, p.message));
        const input = main.querySelector(`[data-field="${CSS.escape(`${job}|${field}`)}"]`);
        if (input) input.classList.add("invalid");
      } else loose.push(p);
    }
    problemsBox.replaceChildren(...loose.map((p) => el("li", { class: "error" }, p.text)));
  }

  async function save() {
    let dropComments = false;
    if (ed.mode === "form" && ed.comments) {
      dropComments = window.confirm(`${ed.comments} comment line(s) of this file will be lost: the form writes the YAML anew. `
        + "Use the YAML tab to keep them. Save from the form anyway?");
      if (!dropComments) return;
    }
    const id = targetId();
    const reply = await send("PUT", "pipes/" + id.split("/").map(encodeURIComponent).join("/"),
      { ...payload(), base: { md5: ed.base }, drop_comments: dropComments });
    if (!reply.ok) {
      if (reply.data.problems) showProblems(reply.data.problems);
      saveStatus.replaceChildren(el("span", { class: "error", id: "save-error" }, reply.data.error));
      return;
    }
    ed.base = reply.data.md5;
    ed.comments = ed.mode === "yaml" ? (yamlText.value.match(/(^|\s)#/gm) || []).length : 0;
    ed.id = id;
    appPick.disabled = nameInput.disabled = true;
    showProblems([]);
    saveStatus.replaceChildren(el("span", { id: "saved" }, `\u2713 saved ${id} `),
      el("a", { href: "#/pipe/" + encodeURIComponent(id) }, "open the pipe"));
    noteComments();
  }

  async function switchTo(mode) {
    if (mode === ed.mode) return;
    clearTimeout(timer);
    if (mode === "yaml" && ed.formChanged) { // the form's data as YAML (comments of the file are gone)
      const checked = await validate(false);
      if (checked) yamlText.value = checked.yaml;
    }
    if (mode === "form") {
      const checked = await validate(false);
      if (!checked || !checked.data || typeof checked.data !== "object") {
        saveStatus.replaceChildren(el("span", { class: "error" }, "fix the YAML first: the form needs a mapping of jobs"));
        return;
      }
      ed.data = checked.data;
      if (!ed.data.jobs || typeof ed.data.jobs !== "object") ed.data.jobs = {};
      ed.formChanged = false;
    }
    ed.mode = mode;
    tabs.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.id === `tab-${mode}`)));
    show();
  }

  function noteComments() {
    commentNote.hidden = !(ed.mode === "form" && ed.comments);
    commentNote.textContent = `This file has ${ed.comments} comment line(s): saving from the form drops them `
      + "(you will be asked first); the YAML tab keeps the text exactly as you type it.";
  }

  function show() {
    form.hidden = ed.mode !== "form";
    yamlText.hidden = ed.mode !== "yaml";
    if (ed.mode === "form") renderForm();
    noteComments();
    validate(false);
  }
  show();
}
