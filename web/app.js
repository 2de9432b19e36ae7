// Sluice's dashboard: one page over the daemon's own API. Every piece of text that comes from
// the daemon (file names, errors, log lines, task fields) goes into the page as text
// (textContent, createTextNode), never as HTML. Live updates come from the event stream
// (/api/v1/events); changes are applied once per animation frame.

const EVENT_TYPES = ["job.queued", "job.running", "job.retrying", "job.succeeded", "job.failed",
  "job.cancelled", "job.deferred", "job.log", "task.new", "task.scheduled", "task.enqueued",
  "task.running", "task.completed", "task.failed"];
const STATES = ["queued", "running", "retrying", "succeeded", "failed", "cancelled", "deferred"];
const MAX_FEED = 200;      // live events kept on the overview
const MAX_TIMELINE = 2000; // events kept on a job's page

const session = { csrf: "", required: false };
let lastEventId = 0;
const listeners = new Set();  // (events) => void, for the view on screen
let pending = [];
let frameAsked = false;

// ---- small DOM helpers: text only ----
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
const main = () => document.getElementById("main");
function show(...nodes) { main().replaceChildren(...nodes); }
function fmtAge(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return `${(s / 86400).toFixed(1)} d ago`;
}
function stateBadge(state) { return el("span", { class: `state s-${state}` }, state); }

// ---- the API ----
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}
async function api(path, { method = "GET", body, signingIn = false } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const err = data && data.error ? data.error : { code: String(resp.status), message: text };
    if (resp.status === 401 && session.required && !signingIn) login();
    throw new ApiError(resp.status, err.code, err.message);
  }
  return data;
}
function errorBox(e) {
  return el("p", { class: "error", role: "alert" }, e instanceof ApiError ? `${e.code}: ${e.message}` : String(e));
}

// ---- live events: one EventSource for the page; resumes from the last id it saw ----
let source = null;
function connect() {
  if (source) source.close();
  const url = "/api/v1/events" + (lastEventId ? `?after=${lastEventId}` : "");
  source = new EventSource(url);
  const live = document.getElementById("live");
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => {
    live.textContent = "reconnecting…"; live.className = "live off";
    // The browser retries by itself with Last-Event-ID; a stream the server ended (lagged,
    // restarted) is opened again from the last id seen.
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 1000);
  };
  const onEvent = (msg) => {
    const id = Number(msg.lastEventId);
    if (!(id > lastEventId)) return;  // seen already: never shown twice
    lastEventId = id;
    let data = {};
    try { data = JSON.parse(msg.data); } catch { /* shown as it is */ }
    pending.push({ id, type: msg.type, data });
    if (!frameAsked) { frameAsked = true; requestAnimationFrame(flush); }
  };
  for (const t of EVENT_TYPES) source.addEventListener(t, onEvent);
  source.addEventListener("lagged", () => { source.close(); setTimeout(connect, 100); });
}
function flush() {
  frameAsked = false;
  const batch = pending;
  pending = [];
  for (const fn of listeners) fn(batch);
}
function listen(fn) { listeners.clear(); listeners.add(fn); }

// ---- views ----
const views = { overview, jobs, job, failed, tasks };
function route() {
  const hash = location.hash.slice(1) || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const name = parts[0] || "overview";
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.view === name || (name === "job" && a.dataset.view === "jobs"));
  }
  listen(() => {});
  (views[name] || overview)(params, parts.slice(1));
}

async function overview() {
  const counts = el("section", { class: "card" }, el("h2", {}, "Queues"));
  const spools = el("section", { class: "card" }, el("h2", {}, "Spools"));
  const feed = el("ol", { class: "feed", id: "feed" });
  const rate = el("p", { class: "muted", id: "rate" }, "");
  show(el("div", { class: "grid" }, counts, spools),
       el("section", { class: "card" }, el("h2", {}, "Live events"), rate, feed));
  const finished = [];  // timestamps of job ends seen live (the rate of the last minute)
  let refreshing = false, again = false;
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const [q, s] = await Promise.all([api("/api/v1/queues"), api("/api/v1/spools")]);
      counts.replaceChildren(el("h2", {}, "Queues"), queueTable(q.queues));
      spools.replaceChildren(el("h2", {}, "Spools"), spoolTable(s.spools));
    } catch (e) {
      counts.replaceChildren(el("h2", {}, "Queues"), errorBox(e));
    } finally {
      refreshing = false;
      if (again) { again = false; setTimeout(refresh, 250); }
    }
  }
  await refresh();
  listen((batch) => {
    let changed = false;
    const now = Date.now();
    for (const e of batch) {
      if (e.type !== "job.log") changed = true;
      if (e.type === "job.succeeded" || e.type === "job.failed") finished.push(now);
      feed.prepend(feedItem(e));
    }
    while (feed.childElementCount > MAX_FEED) feed.lastElementChild.remove();
    while (finished.length && finished[0] < now - 60000) finished.shift();
    rate.textContent = `${finished.length} jobs ended in the last minute (seen live)`;
    if (changed) refresh();
  });
}
function queueTable(queues) {
  if (!queues.length) return el("p", { class: "muted" }, "No jobs yet.");
  return el("table", { class: "counts" },
    el("thead", {}, el("tr", {}, el("th", {}, "queue"), STATES.map((s) => el("th", {}, s)))),
    el("tbody", {}, queues.map((q) => el("tr", { "data-queue": q.name }, el("td", {}, q.name),
      STATES.map((s) => el("td", { "data-state": s },
        q.jobs[s] ? el("a", { href: `#/jobs?queue=${encodeURIComponent(q.name)}&state=${s}` }, String(q.jobs[s])) : "0"))))));
}
function spoolTable(spools) {
  if (!spools.length) return el("p", { class: "muted" }, "No spool.");
  return el("table", {},
    el("thead", {}, el("tr", {}, ["spool", "kind", "backlog", "succeeded", "failed"].map((h) => el("th", {}, h)))),
    el("tbody", {}, spools.map((s) => el("tr", {},
      el("td", { title: s.path }, s.name || s.path), el("td", {}, s.kind), el("td", {}, String(s.backlog)),
      el("td", {}, String(s.succeeded)), el("td", {}, String(s.failed))))));
}
function feedItem(e) {
  const d = e.data || {};
  const what = e.type === "job.log" ? d.line : (d.name || d.task || "");
  const link = d.job !== undefined ? el("a", { href: `#/job/${d.job}` }, `job ${d.job}`) : "";
  return el("li", {}, el("span", { class: "muted" }, `#${e.id} `), el("b", {}, e.type), " ", link, " ",
    el("span", { class: "name" }, what || ""),
    d.error ? el("span", { class: "error" }, ` ${d.error.code || ""}: ${d.error.message || ""}`) : "");
}

async function jobs(params) {
  const form = el("form", { class: "filters" },
    el("label", {}, "state ", el("select", { name: "state" }, el("option", { value: "" }, "any"),
      STATES.map((s) => el("option", { value: s, selected: params.get("state") === s }, s)))),
    el("label", {}, "queue ", el("input", { name: "queue", value: params.get("queue") || "" })),
    el("label", {}, "kind ", el("input", { name: "kind", value: params.get("kind") || "" })),
    el("label", {}, "file name ", el("input", { name: "name", value: params.get("name") || "" })),
    el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
    location.hash = "#/jobs?" + q.toString();
  });
  const list = el("div", {});
  show(el("h2", {}, "Jobs"), form, list);
  const q = new URLSearchParams();
  for (const k of ["state", "queue", "kind", "name", "cursor"]) if (params.get(k)) q.set(k, params.get(k));
  q.set("limit", "50");
  try {
    const page = await api("/api/v1/jobs?" + q.toString());
    const next = new URLSearchParams(params);
    if (page.next_cursor) next.set("cursor", page.next_cursor);
    list.append(jobTable(page.jobs),
      el("p", { class: "pager" },
        params.get("cursor") ? el("a", { href: "#/jobs?" + withoutCursor(params) }, "« newest") : "",
        " ", page.next_cursor ? el("a", { href: "#/jobs?" + next.toString(), class: "older" }, "older »") : ""));
  } catch (e) { list.append(errorBox(e)); }
  listen((batch) => {
    if (!params.get("cursor") && batch.some((e) => e.type !== "job.log" && e.type.startsWith("job."))) {
      clearTimeout(jobs.timer);
      jobs.timer = setTimeout(() => { if (location.hash.startsWith("#/jobs")) route(); }, 500);
    }
  });
}
function withoutCursor(params) { const p = new URLSearchParams(params); p.delete("cursor"); return p.toString(); }
function jobTable(list) {
  if (!list.length) return el("p", { class: "muted" }, "No job matches.");
  return el("table", { class: "jobs" },
    el("thead", {}, el("tr", {}, ["id", "state", "queue", "kind", "file / origin", "attempts", "created", "error"].map((h) => el("th", {}, h)))),
    el("tbody", {}, list.map((j) => el("tr", { "data-job": j.id },
      el("td", {}, el("a", { href: `#/job/${j.id}` }, String(j.id))), el("td", {}, stateBadge(j.state)),
      el("td", {}, j.queue), el("td", {}, j.kind), el("td", { class: "name" }, j.name || j.origin || ""),
      el("td", {}, `${j.attempts}/${j.max_attempts}`), el("td", { title: j.created_at }, fmtAge(j.created_at)),
      el("td", { class: "error" }, j.error ? j.error.code : "")))));
}

async function job(params, parts) {
  const id = Number(parts[0]);
  if (!Number.isInteger(id) || id < 1) return show(el("p", { class: "error" }, "No such job."));
  const head = el("section", { class: "card" });
  const timeline = el("ol", { class: "timeline" });
  const log = el("pre", { class: "log", id: "log" });
  show(head, el("div", { class: "grid" },
    el("section", { class: "card" }, el("h2", {}, "Timeline"), timeline),
    el("section", { class: "card" }, el("h2", {}, "Log"), log)));
  async function load() {
    try {
      const j = await api(`/api/v1/jobs/${id}`);
      head.replaceChildren(...jobHead(j, load));
    } catch (e) { head.replaceChildren(errorBox(e)); }
  }
  await load();
  // The timeline: the job's stored events, then live ones (one stream of its own).
  const own = new EventSource(`/api/v1/events?job=${id}&after=0`);
  let seen = 0;
  const add = (msg) => {
    const eid = Number(msg.lastEventId);
    if (!(eid > seen)) return;
    seen = eid;
    let d = {};
    try { d = JSON.parse(msg.data); } catch { /* text */ }
    if (msg.type === "job.log") return;
    timeline.append(el("li", {}, el("span", { class: "muted" }, (d.ts || "") + ` #${eid} `), stateBadge(msg.type.slice(4)),
      d.attempts !== undefined ? ` attempt ${d.attempts}/${d.max_attempts}` : "",
      d.run_at ? ` — next try at ${d.run_at}` : "",
      d.error ? el("div", { class: "error" }, `${d.error.code}: ${d.error.message}`) : ""));
    while (timeline.childElementCount > MAX_TIMELINE) timeline.firstElementChild.remove();
    if (msg.type !== "job.queued") load();
  };
  for (const t of EVENT_TYPES) own.addEventListener(t, add);
  const stop = () => { own.close(); window.removeEventListener("hashchange", stop); };
  window.addEventListener("hashchange", stop);
  followLog(id, log);
}
async function followLog(id, pre) {
  const ctrl = new AbortController();
  const stop = () => { ctrl.abort(); window.removeEventListener("hashchange", stop); };
  window.addEventListener("hashchange", stop);
  try {
    const resp = await fetch(`/api/v1/jobs/${id}/log?follow=1`, { credentials: "same-origin", signal: ctrl.signal });
    if (!resp.ok) { pre.append(document.createTextNode(`(log unavailable: ${resp.status})`)); return; }
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pre.append(document.createTextNode(dec.decode(value, { stream: true })));
      pre.scrollTop = pre.scrollHeight;
    }
  } catch (e) {
    if (e.name !== "AbortError") pre.append(document.createTextNode(`\n(log stream ended: ${e})`));
  }
}
function jobHead(j, reload) {
  const act = (label, action, question) => el("button", { "data-action": action, on: { click: async (ev) => {
    if (!confirm(question)) return;
    ev.target.disabled = true;
    try {
      const r = await api(`/api/v1/jobs/${j.id}/${action}`, { method: "POST" });
      // A spool file goes back into its spool and runs as a new job: show both, by name.
      if (r && r.retried) location.hash = `#/jobs?name=${encodeURIComponent(r.retried.name)}`;
      else await reload();
    }
    catch (e) { ev.target.after(errorBox(e)); ev.target.disabled = false; }
  } } }, label);
  const waiting = j.state === "queued" || j.state === "retrying";
  return [
    el("h2", {}, `Job ${j.id} `, stateBadge(j.state)),
    el("dl", {},
      el("dt", {}, "queue / kind"), el("dd", {}, `${j.queue} / ${j.kind}`),
      el("dt", {}, "file / origin"), el("dd", { class: "name" }, j.name || j.origin || ""),
      el("dt", {}, "attempts"), el("dd", {}, `${j.attempts} of ${j.max_attempts}` + (j.interruptions ? `, ${j.interruptions} interrupted` : "")),
      el("dt", {}, "created"), el("dd", {}, j.created_at),
      j.finished_at ? [el("dt", {}, "finished"), el("dd", {}, j.finished_at)] : "",
      j.run_at ? [el("dt", {}, "next try"), el("dd", {}, j.run_at)] : "",
      j.error ? [el("dt", {}, "error"), el("dd", { class: "error" }, `${j.error.code}: ${j.error.message}`)] : "",
      j.result ? [el("dt", {}, "result"), el("dd", {}, el("code", {}, JSON.stringify(j.result)))] : ""),
    el("p", { class: "actions" },
      j.state === "failed" || j.state === "cancelled" ? act("Retry", "retry", `Run job ${j.id} again?`) : "",
      waiting ? act("Run next", "priority", `Run job ${j.id} before the others?`) : "",
      waiting ? act("Cancel", "cancel", `Cancel job ${j.id}? It will not run.`) : ""),
  ];
}

async function failed() {
  const box = el("div", {});
  show(el("h2", {}, "Failed jobs"), el("p", { class: "muted" }, "Grouped by error code, newest 1,000 failures."), box);
  try {
    const page = await api("/api/v1/jobs?state=failed&limit=1000");
    const groups = new Map();
    for (const j of page.jobs) {
      const code = j.error ? j.error.code : "(none)";
      if (!groups.has(code)) groups.set(code, []);
      groups.get(code).push(j);
    }
    if (!groups.size) box.append(el("p", { class: "muted" }, "No failed job."));
    for (const [code, list] of [...groups].sort((a, b) => b[1].length - a[1].length)) {
      const retryAll = el("button", { "data-action": "retry-all", on: { click: async (ev) => {
        if (!confirm(`Retry all ${list.length} jobs failed with ${code}?`)) return;
        ev.target.disabled = true;
        const errors = [];
        for (const j of list) {
          try { await api(`/api/v1/jobs/${j.id}/retry`, { method: "POST" }); } catch (e) { errors.push(e); }
        }
        if (errors.length) ev.target.after(errorBox(errors[0]));
        setTimeout(route, 300);
      } } }, `Retry all ${list.length}`);
      box.append(el("section", { class: "card", "data-code": code },
        el("h3", {}, el("code", {}, code), ` — ${list.length} `, retryAll),
        el("p", {}, list[0].error ? list[0].error.message : ""),
        jobTable(list.slice(0, 20))));
    }
  } catch (e) { box.append(errorBox(e)); }
  listen((batch) => { if (batch.some((e) => e.type === "job.failed")) { clearTimeout(failed.t); failed.t = setTimeout(route, 500); } });
}

async function tasks() {
  const box = el("div", {});
  const text = el("textarea", { rows: 8, name: "task", spellcheck: "false" },
    JSON.stringify({ tasks: [{ task_id: "my-repo", backend: "git", category: "commit",
      backend_args: { uri: "https://example.org/repo.git" }, scheduler: { delay: 60 } }] }, null, 2));
  const out = el("div", {});
  const add = el("form", { class: "card" }, el("h3", {}, "Add a task (Arthur's /add)"), text,
    el("button", { type: "submit" }, "Add"), out);
  add.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.replaceChildren();
    let body;
    try { body = JSON.parse(text.value); } catch (e) { return out.append(errorBox(`not JSON: ${e.message}`)); }
    try { await api("/add", { method: "POST", body }); out.append(el("p", {}, "Added.")); load(); }
    catch (e) { out.append(errorBox(e)); }
  });
  show(el("h2", {}, "Tasks"), box, add);
  async function load() {
    try {
      const data = await api("/tasks");
      const list = data.tasks || [];
      box.replaceChildren(list.length ? el("table", {},
        el("thead", {}, el("tr", {}, ["task", "backend", "status", "age", "failures", "next run", "last job", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, list.map((t) => el("tr", { "data-task": t.task_id },
          el("td", { class: "name" }, t.task_id), el("td", {}, `${t.backend} ${t.category}`), el("td", {}, stateBadge(String(t.status).toLowerCase())),
          el("td", {}, String(t.age)), el("td", {}, String(t.num_failures)),
          el("td", {}, t.scheduling_next_run || t.next_run || ""), el("td", {}, t.jobs && t.jobs.length ? String(t.jobs[t.jobs.length - 1]) : ""),
          el("td", {}, taskButton("Reschedule", "/reschedule", t.task_id, load), taskButton("Remove", "/remove", t.task_id, load))))))
        : el("p", { class: "muted" }, "No task."));
    } catch (e) { box.replaceChildren(errorBox(e)); }
  }
  await load();
  listen((batch) => { if (batch.some((e) => e.type.startsWith("task."))) { clearTimeout(tasks.t); tasks.t = setTimeout(load, 300); } });
}
function taskButton(label, path, id, reload) {
  return el("button", { on: { click: async (ev) => {
    if (!confirm(`${label} task ${id}?`)) return;
    try { await api(path, { method: "POST", body: { tasks: [{ task_id: id }] } }); reload(); }
    catch (e) { ev.target.after(errorBox(e)); }
  } } }, label);
}

// ---- the session ----
function login() {
  listen(() => {});
  const form = document.getElementById("login-form").content.firstElementChild.cloneNode(true);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = form.elements.token.value;
    form.elements.token.value = "";
    try {
      const r = await api("/api/v1/session", { method: "POST", body: { token }, signingIn: true });
      session.csrf = r.csrf || "";
      start();
    } catch (e) { form.querySelector(".error").textContent = e.message; }
  });
  show(form);
}
async function start() {
  const s = await api("/api/v1/session");
  session.required = s.token_required;
  session.csrf = s.csrf || "";
  const out = document.getElementById("logout");
  if (s.token_required && !s.authenticated) { out.hidden = true; return login(); }
  out.hidden = !s.token_required;
  connect();
  route();
}
document.getElementById("logout").addEventListener("click", async () => {
  try { await api("/api/v1/session", { method: "DELETE" }); } catch { /* ended anyway */ }
  if (source) source.close();
  session.csrf = "";
  document.getElementById("logout").hidden = true;
  login();
});
window.addEventListener("hashchange", route);
start().catch((e) => show(errorBox(e)));
