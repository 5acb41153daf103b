// The console's pages. Every value goes into the page through textContent or setAttribute (el()
// below), never innerHTML: a state name, an error cause or a report name with HTML in it is text.
"use strict";

const TOKEN = document.querySelector('meta[name="console-token"]').content;
const TOKEN_HEADER = document.querySelector('meta[name="console-token-header"]').content;
const POLL_MS = 1000;
const STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"];
const JOB_KINDS = { "createProcessingJob": ["processing", "ProcessingJobName"], "createTrainingJob": ["training", "TrainingJobName"],
  "createHyperParameterTuningJob": ["tuning", "HyperParameterTuningJobName"], "createTransformJob": ["transform", "TransformJobName"] };
let stopPolling = () => {};

// -- helpers ----------------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const main = () => document.getElementById("main");
function show(...nodes) { main().replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false)); }
function badge(status) { return el("span", { class: "badge " + (status || ""), "data-badge": status }, status || "—"); }
function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
function pretty(text) {
  if (text === undefined || text === null) return "";
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
}
function toast(message, bad) {
  const t = document.getElementById("toast");
  t.textContent = message;
  t.className = "show" + (bad ? " bad" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ""; }, bad ? 9000 : 3500);
}
async function api(view, params) {
  const query = new URLSearchParams(params || {}).toString();
  const answer = await fetch("/api/" + view + (query ? "?" + query : ""), { headers: { Accept: "application/json" } });
  const body = await answer.json();
  if (!answer.ok) throw new Error(`${body.error}: ${body.message}`);
  return body;
}
async function act(action, body) {
  const answer = await fetch("/api/" + action, { method: "POST", headers: { "Content-Type": "application/json", [TOKEN_HEADER]: TOKEN },
    body: JSON.stringify(body) });
  const result = await answer.json();
  if (!answer.ok) throw new Error(`${result.error}: ${result.message}`);
  return result;
}
function objectUrl(bucket, key) { return "/api/object?" + new URLSearchParams({ bucket, key }).toString(); }
function table(headers, rows, attrs) {
  return el("table", attrs || {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))), el("tbody", {}, rows));
}
function kv(pairs) {
  return el("dl", { class: "kv" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "").map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}
function shortArn(arn) { return (arn || "").split(":").slice(-1)[0]; }

// -- state machines ---------------------------------------------------------------------------
async function pageMachines() {
  const machines = await api("machines");
  show(el("h1", {}, "State machines"),
    machines.length ? table(["Name", "Type", "States", "Latest execution", "Started"], machines.map((m) => el("tr", { "data-machine": m.name },
      el("td", {}, el("a", { href: "#/machine/" + encodeURIComponent(m.arn) }, m.name), m.comment ? el("div", { class: "muted" }, m.comment) : null),
      el("td", {}, m.type), el("td", { class: "num" }, m.states),
      el("td", {}, m.latest ? [badge(m.latest.status), " ", el("a", { href: "#/execution/" + encodeURIComponent(m.latest.executionArn) }, m.latest.name)] : el("span", { class: "muted" }, "none yet")),
      el("td", {}, m.latest ? when(m.latest.startDate) : ""))))
      : el("p", { class: "muted" }, "No state machine is deployed: `python -m emulator deploy`, then restart `serve`."));
}

async function pageMachine(arn) {
  const [machine, list] = await Promise.all([api("machine", { arn }), api("executions", { arn })]);
  const filter = el("select", { id: "status-filter", onchange: () => reload() }, el("option", { value: "" }, "all statuses"), STATUSES.map((s) => el("option", { value: s }, s)));
  const listBox = el("div", { id: "executions" });
  const editor = el("textarea", { id: "execution-input", spellcheck: "false" });
  editor.value = JSON.stringify(machine.sampleInput, null, 2);
  const nameBox = el("input", { type: "text", id: "execution-name", placeholder: "name (default: a UUID)", size: 36 });
  const form = el("div", { class: "card", id: "start-form", hidden: true },
    el("h2", {}, "Start execution"), el("p", { class: "muted" }, "The input, as JSON: prefilled with the newest execution's input, or the machine's configured defaults."),
    editor, el("div", { class: "toolbar" }, nameBox,
      el("button", { class: "primary", id: "start-submit", onclick: async () => {
        try {
          const started = await act("start", { stateMachineArn: arn, input: editor.value, name: nameBox.value || undefined });
          location.hash = "#/execution/" + encodeURIComponent(started.executionArn);
        } catch (error) { toast(error.message, true); }
      } }, "Start"),
      el("button", { onclick: () => { form.hidden = true; } }, "Cancel")));
  function renderList(rows) {
    listBox.replaceChildren(rows.length ? table(["Name", "Status", "Started", "Stopped"], rows.map((x) => el("tr", { "data-execution": x.name },
      el("td", {}, el("a", { href: "#/execution/" + encodeURIComponent(x.executionArn) }, x.name)), el("td", {}, badge(x.status)),
      el("td", {}, when(x.startDate)), el("td", {}, when(x.stopDate))))) : el("p", { class: "muted" }, "No execution with that status."));
  }
  async function reload() {
    try { renderList(await api("executions", filter.value ? { arn, status: filter.value } : { arn })); } catch (error) { toast(error.message, true); }
  }
  renderList(list);
  const graphBox = el("div", { class: "graph-wrap", id: "graph-box" });
  const legendBox = legend();
  show(el("h1", {}, machine.name), el("div", { class: "muted" }, machine.arn),
    el("div", { class: "toolbar" }, el("button", { class: "primary", id: "start-execution", onclick: () => { form.hidden = false; editor.focus(); } }, "Start execution"),
      el("label", {}, "Filter ", filter), el("button", { onclick: reload }, "Refresh")),
    form, el("h2", {}, "Executions"), listBox, el("h2", {}, "Definition"), legendBox, graphBox);
  const graph = ConsoleGraph.render(graphBox, machine.definition, null);
  legendBox.append(zoomBar(graph));
  const timer = setInterval(reload, 3000);
  stopPolling = () => clearInterval(timer);
}

function zoomBar(graph) {
  const label = el("span", { class: "muted", id: "zoom-level" }, "100%");
  const set = (value) => { label.textContent = Math.round(graph.zoom(value) * 100) + "%"; };
  return el("span", { class: "zoom" }, "Zoom ", el("button", { onclick: () => set(graph.scale / 1.25), title: "smaller" }, "−"), " ", label, " ",
    el("button", { onclick: () => set(graph.scale * 1.25), title: "larger" }, "+"), " ",
    el("button", { onclick: () => set("fit"), id: "zoom-fit" }, "Whole graph"), " ", el("button", { onclick: () => set(1) }, "100%"));
}

function legend() {
  const item = (cls, label) => el("span", {}, el("i", { class: cls }), label);
  return el("div", { class: "legend" }, item("lg-ok", "succeeded"), item("lg-caught", "caught (error handled)"),
    item("lg-failed", "failed"), item("lg-running", "running"), item("lg-notrun", "not run"),
    item("ln lg-next", "Next"), item("ln lg-catch", "Catch"), item("ln lg-default", "Choice default"));
}

// -- one execution ----------------------------------------------------------------------------
// What happened to each state, from the history: the failure events name no state, so each is
// walked back along previousEventId to the StateEntered event it follows (branches keep their own
// chains, as on AWS).
function stateRuns(events, execution) {
  const byId = new Map(events.map((e) => [String(e.id), e]));
  const runs = new Map();
  const run = (name) => { if (!runs.has(name)) runs.set(name, { name, status: "notrun", entries: 0, retries: 0, scheduled: null }); return runs.get(name); };
  const owner = (event) => {
    for (let cur = event, hops = 0; cur && hops < 100000; cur = byId.get(String(cur.previousEventId)), hops++) {
      if (cur.type.endsWith("StateEntered")) return cur.stateEnteredEventDetails.name;
    }
    return null;
  };
  for (const e of events) {
    const details = Object.entries(e).find(([k]) => k.endsWith("EventDetails"));
    const d = details ? details[1] : {};
    if (e.type.endsWith("StateEntered")) {
      const r = run(d.name);
      Object.assign(r, { status: "running", input: d.input, pending: null, entries: r.entries + 1, enteredAt: e.timestamp });
    } else if (e.type.endsWith("StateExited")) {
      const r = run(d.name);
      Object.assign(r, { status: r.pending ? "caught" : "succeeded", output: d.output, exitedAt: e.timestamp });
    } else if (e.type.startsWith("Execution")) {
      continue;
    } else {
      const name = owner(e);
      if (!name) continue;
      const r = run(name);
      if (e.type.endsWith("Scheduled") || e.type === "TaskSubmitted") {
        if (r.pending) { r.retries += 1; r.pending = null; }
        if (e.type.endsWith("Scheduled")) r.scheduled = d;
        if (e.type === "TaskSubmitted") r.submitted = d;
      }
      if (d.error !== undefined || d.cause !== undefined) { r.pending = { error: d.error, cause: d.cause }; r.error = d.error; r.cause = d.cause; }
    }
  }
  if (execution.status !== "RUNNING") {
    for (const r of runs.values()) {
      if (r.status !== "running") continue;
      r.status = "failed";
      if (!r.pending) { r.error = execution.error; r.cause = execution.cause; }
    }
  }
  return runs;
}

// A Lambda error's cause is JSON with an errorMessage (and a stack trace): the message first
function causeMessage(cause) {
  try { const parsed = JSON.parse(cause); return parsed && typeof parsed.errorMessage === "string" ? parsed.errorMessage : null; } catch (e) { return null; }
}

function jobOf(r) {
  if (!r || !r.scheduled || !r.scheduled.resource) return null;
  const op = r.scheduled.resource.replace(/\.(sync|waitForTaskToken)$/, "").split(":").slice(-1)[0];
  const kind = JOB_KINDS[op];
  if (!kind) return null;
  try {
    const params = JSON.parse(r.scheduled.parameters || "{}");
    return params[kind[1]] ? { kind: kind[0], name: params[kind[1]] } : null;
  } catch (e) { return null; }
}

async function pageExecution(arn) {
  let data = await api("execution", { arn });
  const graphBox = el("div", { class: "graph-wrap", id: "graph-box" });
  const side = el("div", { class: "card side", id: "state-detail" }, el("p", { class: "muted" }, "Click a state for its input, output, error and cause."));
  const head = el("div", { id: "execution-head" });
  const eventsBox = el("div", { id: "events" });
  let selected = null, runs = new Map(), shownEvents = -1;
  const legendBox = legend();
  show(head, legendBox, el("div", { class: "split" }, graphBox, side), el("h2", {}, "Event history"), eventsBox);
  const graph = ConsoleGraph.render(graphBox, data.definition, (name) => { selected = name; graph.select(name); detail(); });
  legendBox.append(zoomBar(graph));

  function renderHead() {
    const x = data.execution;
    const redrivable = ["FAILED", "ABORTED", "TIMED_OUT"].includes(x.status);
    head.replaceChildren(
      el("h1", {}, el("span", { id: "execution-name" }, x.name), " ", el("span", { id: "execution-status" }, badge(x.status)),
        x.status === "RUNNING" ? el("span", { class: "muted", id: "live" }, "  live") : null),
      kv([["State machine", el("a", { href: "#/machine/" + encodeURIComponent(x.stateMachineArn) }, data.machineName)],
        ["Started", when(x.startDate)], ["Stopped", when(x.stopDate)], ["Redrives", x.redriveCount],
        ["Error", x.error ? el("code", { id: "execution-error" }, x.error) : null],
        ["Cause", x.cause ? el("details", {}, el("summary", {}, causeMessage(x.cause) || x.cause.slice(0, 160)), el("pre", { id: "execution-cause" }, x.cause)) : null]]),
      el("div", { class: "toolbar" },
        x.status === "RUNNING" ? el("button", { class: "danger", id: "stop-execution", onclick: () => act("stop", { executionArn: arn }).then(() => toast("stop requested")).catch((e) => toast(e.message, true)) }, "Stop execution") : null,
        redrivable ? el("button", { id: "redrive-execution", onclick: () => act("redrive", { executionArn: arn }).then(() => { toast("redriven"); poll(); }).catch((e) => toast(e.message, true)) }, "Redrive") : null,
        el("button", { onclick: () => { location.hash = "#/machine/" + encodeURIComponent(x.stateMachineArn); } }, "Executions"),
        el("details", {}, el("summary", {}, "Input / output"), el("pre", {}, pretty(x.input)), x.output ? el("pre", {}, pretty(x.output)) : null)));
  }

  function renderEvents() {
    if (data.events.length === shownEvents) return;
    shownEvents = data.events.length;
    const first = data.events.length ? new Date(data.events[0].timestamp) : null;
    eventsBox.replaceChildren(table(["ID", "Type", "State", "Elapsed (ms)", "Details"], data.events.map((e) => {
      const details = Object.entries(e).find(([k]) => k.endsWith("EventDetails"));
      const d = details ? details[1] : {};
      const name = d.name || "";
      const summary = d.error ? `${d.error}: ${d.cause || ""}` : (d.resource ? `${d.resourceType || ""} ${d.resource}` : "");
      return el("tr", { "data-event": e.type },
        el("td", { class: "num" }, e.id), el("td", {}, e.type),
        el("td", {}, name ? el("button", { class: "link", onclick: () => { selected = name; graph.select(name); detail(); } }, name) : ""),
        el("td", { class: "num" }, first ? Math.round(new Date(e.timestamp) - first) : ""),
        el("td", {}, summary.length > 240 ? summary.slice(0, 240) + "…" : summary));
    }), { id: "events-table" }));
  }

  async function detail() {
    if (!selected) return;
    const r = runs.get(selected) || { status: "notrun" };
    const state = findState(data.definition.States, selected) || {};
    const parts = [el("h2", { id: "detail-name" }, selected), kv([["Type", state.Type], ["Status", el("span", { id: "detail-status" }, r.status)],
      ["Resource", state.Resource], ["Entered", r.entries > 1 ? `${r.entries} times` : null], ["Retries", r.retries || null]])];
    if (r.error || r.cause) {
      parts.push(el("div", { class: "error-box" + (r.status === "caught" ? " caught" : "") },
        el("div", {}, el("strong", {}, r.status === "caught" ? "Caught error: " : "Error: "), el("code", { id: "detail-error" }, r.error || "")),
        causeMessage(r.cause) ? el("div", { class: "cause-message" }, causeMessage(r.cause)) : null,
        el("details", { open: !causeMessage(r.cause) }, el("summary", {}, "Cause"), el("pre", { id: "detail-cause" }, r.cause || ""))));
    }
    const job = jobOf(r);
    const box = job ? el("div", { id: "job-detail" }, el("p", { class: "muted" }, `Loading ${job.kind} job ${job.name}…`)) : null;
    if (box) parts.push(box);
    if (r.input !== undefined) parts.push(el("div", {}, "Input"), el("pre", { id: "detail-input" }, pretty(r.input)));
    if (r.output !== undefined) parts.push(el("div", {}, "Output"), el("pre", { id: "detail-output" }, pretty(r.output)));
    if (r.status === "notrun") parts.push(el("p", { class: "muted" }, "This state has not run in this execution."));
    side.replaceChildren(...parts);
    if (job) {
      try {
        const described = await api("job", job);
        const status = described.ProcessingJobStatus || described.TrainingJobStatus || described.HyperParameterTuningJobStatus || described.TransformJobStatus;
        box.replaceChildren(...[el("h2", {}, `SageMaker ${job.kind} job`), kv([["Name", job.name], ["Status", badge(status)],
          ["Failure reason", described.FailureReason], ["Secondary status", described.SecondaryStatus],
          ["Final metrics", (described.FinalMetricDataList || []).map((m) => `${m.MetricName}=${Number(m.Value).toPrecision(4)}`).join(", ")]]),
        el("details", {}, el("summary", {}, "Describe output"), el("pre", { id: "job-describe" }, JSON.stringify(described, null, 2)))].filter(Boolean));
        try {
          const logs = await api("log", job);
          for (const stream of logs.streams) {
            box.append(el("div", {}, `Log tail: ${logs.group} ${stream.name} (last ${stream.events.length} lines)`),
              el("pre", { class: "log", "data-log": stream.name }, stream.events.join("\n")));
          }
        } catch (error) { box.append(el("p", { class: "muted", id: "log-error" }, "No log: " + error.message)); }
      } catch (error) { box.replaceChildren(el("p", { class: "muted" }, error.message)); }
    }
  }

  async function poll() {
    try { data = await api("execution", { arn }); } catch (error) { toast(error.message, true); return; }
    runs = stateRuns(data.events, data.execution);
    graph.setStatus(new Map([...runs].map(([n, r]) => [n, r.status])));
    renderHead();
    renderEvents();
    if (selected) detail();
    else {  // follow the newest running state until the user picks one
      const running = [...runs.values()].filter((r) => r.status === "running").pop();
      if (running) graph.reveal(running.name);
    }
    if (data.execution.status === "RUNNING") live(); else stopPolling();
  }
  let timer = null;
  function live() {  // poll GetExecutionHistory while it runs (again after a redrive)
    if (timer) return;
    timer = setInterval(poll, POLL_MS);
    stopPolling = () => { clearInterval(timer); timer = null; };
  }
  runs = stateRuns(data.events, data.execution);
  graph.setStatus(new Map([...runs].map(([n, r]) => [n, r.status])));
  renderHead();
  renderEvents();
  const failed = [...runs.values()].find((r) => r.status === "failed");
  if (failed) { selected = failed.name; graph.select(failed.name); detail(); }
  if (data.execution.status === "RUNNING") live();
}

function findState(states, name) {
  for (const [n, s] of Object.entries(states || {})) {
    if (n === name) return s;
    for (const b of s.Branches || []) { const f = findState(b.States, name); if (f) return f; }
    const inner = s.ItemProcessor || s.Iterator;
    if (inner) { const f = findState(inner.States, name); if (f) return f; }
  }
  return null;
}

// -- endpoints --------------------------------------------------------------------------------
function chart(title, series, unit) {
  const box = el("div", { class: "chart" }, el("div", { class: "title" }, title));
  const W = 260, H = 90, values = series.map((p) => p[1]);
  const s = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  s.setAttribute("viewBox", `0 0 ${W} ${H}`);
  box.append(s);
  const add = (tag, attrs, textValue) => { const n = document.createElementNS(s.namespaceURI, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (textValue !== undefined) n.textContent = textValue; s.append(n); };
  add("line", { x1: 30, y1: H - 14, x2: W, y2: H - 14 });
  if (!values.length) { add("text", { x: 40, y: 45 }, "no datapoints in the last hour"); return box; }
  const top = Math.max(...values), max = top || 1, t0 = new Date(series[0][0]).getTime(), t1 = Math.max(new Date(series[series.length - 1][0]).getTime(), t0 + 1);
  const pts = series.map(([t, v]) => `${30 + (W - 34) * (new Date(t).getTime() - t0) / (t1 - t0)},${H - 16 - (H - 26) * v / max}`);
  if (pts.length === 1) pts.push(pts[0].replace(/^[\d.]+/, String(W - 4)));
  add("polyline", { points: pts.join(" ") });
  add("text", { x: 2, y: 12 }, `${top ? Number(top.toPrecision(3)) : 0}${unit}`);
  add("text", { x: 30, y: H - 2 }, new Date(t0).toLocaleTimeString());
  add("text", { x: W - 60, y: H - 2 }, new Date(t1).toLocaleTimeString());
  return box;
}

async function pageEndpoints() {
  const rows = await api("endpoints");
  show(el("h1", {}, "Endpoints"), rows.length ? rows.map((e) => el("div", { class: "card", "data-endpoint": e.name },
    el("h2", {}, e.name, " ", badge(e.status)),
    kv([["Endpoint config", e.config], ["Created", when(e.created)], ["Last modified", when(e.modified)], ["Failure reason", e.failureReason]]),
    table(["Variant", "Current model", "Weight", "Desired weight", "Instances", "Status"], e.variants.map((v) => el("tr", {},
      el("td", {}, v.name), el("td", {}, v.model || ""), el("td", { class: "num" }, v.weight ?? ""), el("td", { class: "num" }, v.desiredWeight ?? ""),
      el("td", { class: "num" }, v.instances ?? ""), el("td", {}, (v.status || []).join(", "))))),
    el("div", { class: "charts" }, e.variants.flatMap((v) => {
      const m = ((e.metrics || {}).variants || {})[v.name] || {};
      const per = `per ${(e.metrics || {}).period || 60} s`;
      const errors = (m.errors4xx || []).map(([t, x], i) => [t, x + (((m.errors5xx || [])[i] || [])[1] || 0)]);
      return [chart(`${v.name}: invocations (${per})`, m.invocations || [], ""), chart(`${v.name}: 4xx + 5xx errors (${per})`, errors, ""),
        chart(`${v.name}: model latency (average)`, (m.latency || []).map(([t, x]) => [t, x / 1000]), " ms")];
    }))))
    : el("p", { class: "muted" }, "No endpoint yet: a training execution that passes its gate deploys one."));
}

// -- model registry ---------------------------------------------------------------------------
function metricsOf(doc) {
  if (!doc || typeof doc !== "object") return [];
  const found = [];
  (function walk(value, path) {
    if (found.length > 16) return;
    if (typeof value === "number") found.push([path, value]);
    else if (value && typeof value === "object" && !Array.isArray(value) && path.split(".").length < 4) {
      for (const [k, v] of Object.entries(value)) walk(v, path ? path + "." + k : k);
    }
  })(doc, "");
  return found;
}

async function pageRegistry() {
  const groups = await api("registry");
  show(el("h1", {}, "Model registry"), groups.length ? groups.map((g) => el("div", { class: "card", "data-group": g.name },
    el("h2", {}, g.name), g.description ? el("p", { class: "muted" }, g.description) : null,
    table(["Version", "Status", "Created", "Metrics and explanations", ""], g.packages.map((p) => el("tr", { "data-package": p.version },
      el("td", { class: "num" }, p.version), el("td", {}, badge(p.status), p.approvalDescription ? el("div", { class: "muted" }, p.approvalDescription) : null),
      el("td", {}, when(p.created)),
      el("td", {}, p.files.map((f) => f.key.endsWith(".png")
        ? el("a", { href: objectUrl(f.bucket, f.key), target: "_blank", rel: "noopener" }, el("img", { class: "thumb", src: objectUrl(f.bucket, f.key), alt: f.key }))
        : el("details", {}, el("summary", {}, f.key.split("/").slice(-2).join("/"),
          metricsOf(f.json).slice(0, 6).map(([k, v]) => el("span", { class: "muted" }, `  ${k}=${Number(v).toPrecision(4)}`))),
        el("pre", {}, JSON.stringify(f.json, null, 2)))), p.files.length ? null : el("span", { class: "muted" }, "no evaluation files found")),
      el("td", {}, p.status === "PendingManualApproval" ? decision(p.arn) : null))))))
    : el("p", { class: "muted" }, "No model package group yet: a training execution registers its models."));
}

// Approve or reject through UpdateModelPackage, as `aws sagemaker update-model-package` does: the
// execution waiting on the package's approval continues (or fails with ModelRejected)
function decision(arn) {
  const reason = el("input", { type: "text", class: "reason", placeholder: "reason (recorded)", size: 28 });
  const decide = async (status) => {
    try {
      await act("decide", { modelPackageArn: arn, status, reason: reason.value || undefined });
      toast(`${shortArn(arn)}: ${status}`);
      route();
    } catch (error) { toast(error.message, true); }
  };
  return el("div", { class: "toolbar", "data-decide": arn }, reason,
    el("button", { class: "primary", "data-action": "approve", onclick: () => decide("Approved") }, "Approve"),
    el("button", { class: "danger", "data-action": "reject", onclick: () => decide("Rejected") }, "Reject"));
}

// -- reports ----------------------------------------------------------------------------------
async function pageReports() {
  const rows = await api("reports");
  const titles = { capture: "Inference capture report", drift: "Drift report" };
  show(el("h1", {}, "Reports"), el("p", { class: "muted" }, "Objects under reports/capture/<run>/ and monitoring/<run>/ of every bucket, newest first."),
    rows.length ? rows.map((r) => {
      const html = r.files.find((f) => f.key.endsWith(".html"));
      const png = r.files.find((f) => f.key.endsWith(".png"));
      return el("div", { class: "card", "data-report": r.kind + ":" + r.run },
        el("h2", {}, `${titles[r.kind] || r.kind}: ${r.run}`), kv([["Where", `s3://${r.bucket}/${r.prefix}`], ["Last written", when(r.modified)]]),
        el("div", { class: "toolbar" }, r.files.map((f) => el("a", { href: objectUrl(r.bucket, f.key), target: "_blank", rel: "noopener" }, f.key.split("/").slice(-1)[0]))),
        r.summary ? el("details", {}, el("summary", {}, "Summary"), el("pre", {}, JSON.stringify(r.summary, null, 2))) : null,
        png ? el("img", { class: "report", src: objectUrl(r.bucket, png.key), alt: png.key }) : null,
        html && !png ? el("iframe", { class: "report", src: objectUrl(r.bucket, html.key), sandbox: "", title: html.key }) : null);
    }) : el("p", { class: "muted" }, "No report yet: the inference and monitoring pipelines write them when they run."));
}

// -- routing ----------------------------------------------------------------------------------
async function route() {
  stopPolling();
  stopPolling = () => {};
  const [, page, arg] = location.hash.match(/^#\/([^/]*)\/?(.*)$/) || [null, "", ""];
  const name = page || "machines";
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.nav === ({ machine: "machines", execution: "machines" }[name] || name));
  const pages = { machines: pageMachines, machine: pageMachine, execution: pageExecution, endpoints: pageEndpoints, registry: pageRegistry, reports: pageReports };
  const hash = location.hash;
  document.body.removeAttribute("data-shown");
  try {
    await (pages[name] || pageMachines)(decodeURIComponent(arg || ""));
  } catch (error) {
    show(el("h1", {}, "Could not load this page"), el("pre", { id: "page-error" }, error.message));
  }
  if (location.hash === hash) document.body.setAttribute("data-shown", hash);  // rendered (tests wait on it)
}
window.addEventListener("hashchange", route);
route();
