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
let lastFlush = 0;
const FLUSH_MS = 200;

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
// How long ago `iso` was, as of `now` (the server's clock when given).
function fmtAge(iso, now) {
  if (!iso) return "";
  const s = Math.max(0, ((now ? Date.parse(now) : Date.now()) - Date.parse(iso)) / 1000);
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
    if (!frameAsked) {
      // In an animation frame, at most five times a second: a daemon sending a thousand
      // events a second costs the page a handful of repaints, not sixty.
      frameAsked = true;
      const wait = Math.max(0, lastFlush + FLUSH_MS - performance.now());
      setTimeout(() => requestAnimationFrame(flush), wait);
    }
  };
  for (const t of EVENT_TYPES) source.addEventListener(t, onEvent);
  source.addEventListener("lagged", () => { source.close(); setTimeout(connect, 100); });
}
function flush() {
  frameAsked = false;
  lastFlush = performance.now();
  const batch = pending;
  pending = [];
  for (const fn of listeners) fn(batch);
}
function listen(fn) { listeners.clear(); listeners.add(fn); }

// ---- views ----
const views = { overview, jobs, job, failed, tasks, task };
function route() {
  const hash = location.hash.slice(1) || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const name = parts[0] || "overview";
  for (const a of document.querySelectorAll("nav a")) {
    const home = { job: "jobs", task: "tasks" }[name] || name;
    a.classList.toggle("active", a.dataset.view === home);
  }
  listen(() => {});
  (views[name] || overview)(params, parts.slice(1));
}

async function overview() {
  const counts = el("section", { class: "card wide" }, el("h2", {}, "Queues"));
  const spools = el("section", { class: "card" }, el("h2", {}, "Spools"));
  const chart = el("section", { class: "card" }, el("h2", {}, "Jobs ended per minute (15 min)"));
  const failures = el("section", { class: "card" }, el("h2", {}, "Top failures"));
  const leases = el("section", { class: "card", id: "leases" });
  const feed = el("ol", { class: "feed", id: "feed" });
  show(el("div", { class: "grid" }, counts, spools, chart, failures), leases,
       el("section", { class: "card" }, el("h2", {}, "Live events"), feed));
  // One request in flight at a time, at most one a second: a busy daemon sends thousands of
  // events a second, the page asks for the summary again only when it can use it.
  let busy = false, again = false, last = 0;
  async function refresh() {
    if (busy) { again = true; return; }
    const wait = last + 1000 - Date.now();
    if (wait > 0) { busy = true; setTimeout(() => { busy = false; refresh(); }, wait); return; }
    busy = true;
    last = Date.now();
    try {
      const o = await api("/api/v1/overview");
      counts.replaceChildren(el("h2", {}, "Queues"), queueTable(o.queues, o.now));
      spools.replaceChildren(el("h2", {}, "Spools"), spoolTable(o.spools));
      chart.replaceChildren(el("h2", {}, "Jobs ended per minute (15 min)"), minuteChart(o.per_minute));
      failures.replaceChildren(el("h2", {}, "Top failures"), failureList(o.failures));
      leases.replaceChildren(...leaseTable(o.leases, o.now));
      leases.hidden = !o.leases.length;
    } catch (e) {
      counts.replaceChildren(el("h2", {}, "Queues"), errorBox(e));
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }
  // Listening before the first fetch: nothing that happens meanwhile is missed.
  listen((batch) => {
    let changed = false;
    for (const e of batch) if (e.type !== "job.log") changed = true;
    // Only what can stay on screen is built, in one insertion.
    const items = document.createDocumentFragment();
    for (const e of batch.slice(-MAX_FEED).reverse()) items.append(feedItem(e));
    feed.prepend(items);
    while (feed.childElementCount > MAX_FEED) feed.lastElementChild.remove();
    if (changed) refresh();
  });
  await refresh();
}
function queueTable(queues, now) {
  if (!queues.length) return el("p", { class: "muted" }, "No jobs yet.");
  return el("table", { class: "counts" },
    el("thead", {}, el("tr", {}, el("th", {}, "queue"), STATES.map((s) => el("th", {}, s)), el("th", {}, "oldest waiting"))),
    el("tbody", {}, queues.map((q) => el("tr", { "data-queue": q.name }, el("td", {}, q.name),
      STATES.map((s) => el("td", { "data-state": s },
        q.jobs[s] ? el("a", { href: `#/jobs?queue=${encodeURIComponent(q.name)}&state=${s}` }, String(q.jobs[s])) : "0")),
      el("td", { title: q.oldest_waiting || "" }, q.oldest_waiting ? fmtAge(q.oldest_waiting, now) : "—")))));
}
function spoolTable(spools) {
  if (!spools.length) return el("p", { class: "muted" }, "No spool.");
  return el("table", {},
    el("thead", {}, el("tr", {}, ["spool", "kind", "backlog", "succeeded", "failed"].map((h) => el("th", {}, h)))),
    el("tbody", {}, spools.map((s) => el("tr", {},
      el("td", { title: s.path }, el("a", { href: `#/jobs?spool=${encodeURIComponent(s.path)}` }, s.name || s.path)),
      el("td", {}, s.kind), el("td", {}, String(s.backlog)),
      el("td", {}, String(s.succeeded)), el("td", {}, String(s.failed))))));
}
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
function minuteChart(minutes) {
  const W = 420, H = 110, pad = 18, bw = (W - pad) / minutes.length;
  const max = Math.max(1, ...minutes.map((m) => m.succeeded + m.failed));
  const bars = [];
  minutes.forEach((m, i) => {
    const x = pad + i * bw + 1, hs = (m.succeeded / max) * (H - 20), hf = (m.failed / max) * (H - 20);
    const label = `${m.minute.slice(11, 16)}: ${m.succeeded} succeeded, ${m.failed} failed`;
    bars.push(svg("rect", { x, y: H - 14 - hs, width: bw - 2, height: hs, class: "ok" }, svg("title", {}, label)));
    bars.push(svg("rect", { x, y: H - 14 - hs - hf, width: bw - 2, height: hf, class: "bad" }, svg("title", {}, label)));
  });
  const total = minutes.reduce((a, m) => a + m.succeeded + m.failed, 0);
  return el("div", {}, svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" },
    svg("text", { x: 0, y: 10, class: "axis" }, String(max)),
    svg("text", { x: 0, y: H - 4, class: "axis" }, minutes.length ? minutes[0].minute.slice(11, 16) : ""),
    svg("text", { x: W - 30, y: H - 4, class: "axis" }, "now"), ...bars),
    el("p", { class: "muted" }, `${total} jobs ended in 15 min, ${minutes.length ? minutes[minutes.length - 1].succeeded + minutes[minutes.length - 1].failed : 0} this minute`));
}
function failureList(list) {
  if (!list.length) return el("p", { class: "muted" }, "No failed job.");
  return el("ul", { class: "failures" }, list.map((f) => el("li", {},
    el("a", { href: `#/failed` }, el("code", {}, f.code || "(none)")), ` ${f.count}`)));
}
function leaseTable(leases, now) {
  if (!leases.length) return [];
  return [el("h2", {}, "Processes and leases"), el("table", {},
    el("thead", {}, el("tr", {}, ["lease", "held by", "until"].map((h) => el("th", {}, h)))),
    el("tbody", {}, leases.map((l) => el("tr", { class: l.live ? "" : "muted" },
      el("td", { class: "name" }, l.name), el("td", { class: "name" }, l.owner),
      el("td", { title: l.until }, l.live ? "held" : "lapsed " + fmtAge(l.until, now))))))];
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
    el("label", {}, "spool ", el("input", { name: "spool", value: params.get("spool") || "" })),
    el("label", {}, "error code ", el("input", { name: "error", value: params.get("error") || "" })),
    el("label", {}, "file name ", el("input", { name: "name", value: params.get("name") || "" })),
    el("input", { type: "hidden", name: "retried", value: params.get("retried") || "" }),
    el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
    location.hash = "#/jobs?" + q.toString();
  });
  const list = el("div", {});
  const promoteAll = params.get("state") === "deferred" ? el("button", { "data-action": "promote-all", on: { click: async (ev) => {
    if (!confirm("Move every deferred file into its spool?")) return;
    ev.target.disabled = true;
    try { await api("/api/v1/promote", { method: "POST", body: { all: true } }); setTimeout(route, 300); }
    catch (e) { ev.target.after(errorBox(e)); }
  } } }, "Promote all deferred files") : "";
  show(el("h2", {}, "Jobs"), form, promoteAll, list);
  const q = new URLSearchParams();
  for (const k of ["state", "queue", "kind", "spool", "error", "name", "retried", "cursor"]) if (params.get(k)) q.set(k, params.get(k));
  listen((batch) => {
    if (!params.get("cursor") && batch.some((e) => e.type !== "job.log" && e.type.startsWith("job."))) {
      clearTimeout(jobs.timer);
      jobs.timer = setTimeout(() => { if (location.hash.startsWith("#/jobs")) route(); }, 500);
    }
  });
  q.set("limit", "50");
  try {
    const page = await api("/api/v1/jobs?" + q.toString());
    const next = new URLSearchParams(params);
    if (page.next_cursor) next.set("cursor", page.next_cursor);
    list.append(jobTable(page.jobs, !!page.next_cursor),
      el("p", { class: "pager" },
        params.get("cursor") ? el("a", { href: "#/jobs?" + withoutCursor(params) }, "« newest") : "",
        " ", page.next_cursor ? el("a", { href: "#/jobs?" + next.toString(), class: "older" }, "older »") : ""));
  } catch (e) { list.append(errorBox(e)); }
}
function withoutCursor(params) { const p = new URLSearchParams(params); p.delete("cursor"); return p.toString(); }
function jobTable(list, more) {
  // A filter no index serves is searched 100,000 jobs at a time: a page can be empty and
  // still have older jobs after it.
  if (!list.length) return el("p", { class: "muted" }, more ? "No job matches among these; older jobs remain." : "No job matches.");
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
  const timeline = el("ol", { class: "timeline", id: "timeline" });
  const log = el("pre", { class: "log", id: "log" });
  show(head, el("div", { class: "grid" },
    el("section", { class: "card" }, el("h2", {}, "Timeline"), timeline),
    el("section", { class: "card" }, el("h2", {}, "Log"), log)));
  let seen = 0;
  // One entry per state change (and per claim in a cluster), with its time and error.
  const entry = (eid, ts, type, d) => {
    if (!(eid > seen)) return;
    seen = eid;
    if (type === "job.log" && !(d.line || "").startsWith("claimed by")) return;
    timeline.append(el("li", { "data-event": eid }, el("span", { class: "muted" }, `${ts.slice(0, 23).replace("T", " ")} #${eid} `),
      type === "job.log" ? el("span", { class: "name" }, d.line) : stateBadge(type.slice(4)),
      d.attempts !== undefined ? ` attempt ${d.attempts} of ${d.max_attempts}` : "",
      d.run_at ? ` — next try at ${d.run_at.slice(11, 23)}` : "",
      d.error ? el("div", { class: "error" }, `${d.error.code}: ${d.error.message}`) : ""));
    while (timeline.childElementCount > MAX_TIMELINE) timeline.firstElementChild.remove();
  };
  async function load() {
    try {
      const j = await api(`/api/v1/jobs/${id}`);
      head.replaceChildren(...jobHead(j, load));
      for (const e of j.events || []) entry(e.id, e.ts, e.type, e.data || {});
    } catch (e) { head.replaceChildren(errorBox(e)); }
  }
  await load();
  // Then live: its events after the last one shown.
  const own = new EventSource(`/api/v1/events?job=${id}&after=${seen}`);
  const add = (msg) => {
    let d = {};
    try { d = JSON.parse(msg.data); } catch { /* text */ }
    const before = seen;
    entry(Number(msg.lastEventId), new Date().toISOString(), msg.type, d);
    if (seen > before && msg.type !== "job.log") load();
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
      j.payload_bytes !== undefined ? [el("dt", {}, "payload"), el("dd", {},
        el("details", {}, el("summary", {}, `${j.payload_bytes} bytes` + (j.payload_bytes > j.payload_preview.length ? ", the beginning:" : "")),
          el("pre", { class: "payload" }, j.payload_preview)))] : "",
      el("dt", {}, "attempts"), el("dd", {}, `${j.attempts} of ${j.max_attempts}` + (j.interruptions ? `, ${j.interruptions} interrupted` : "")),
      el("dt", {}, "created"), el("dd", {}, j.created_at),
      j.finished_at ? [el("dt", {}, "finished"), el("dd", {}, j.finished_at)] : "",
      j.retried_at ? [el("dt", {}, "retried"), el("dd", {}, `${j.retried_at}: its file went back into the spool as a new job`)] : "",
      j.run_at ? [el("dt", {}, "next try"), el("dd", {}, j.run_at)] : "",
      j.error ? [el("dt", {}, "error"), el("dd", { class: "error" }, `${j.error.code}: ${j.error.message}`)] : "",
      j.result ? [el("dt", {}, "result"), el("dd", {}, el("code", {}, JSON.stringify(j.result)))] : ""),
    el("p", { class: "actions" },
      (j.state === "failed" || j.state === "cancelled") && !j.retried_at ? act("Retry", "retry", `Run job ${j.id} again?`) : "",
      waiting ? act("Run next", "priority", `Run job ${j.id} before the others?`) : "",
      waiting ? act("Cancel", "cancel", `Cancel job ${j.id}? It will not run.`) : "",
      j.state === "deferred" ? el("button", { "data-action": "promote", on: { click: async (ev) => {
        if (!confirm(`Move ${j.name} into the spool now?`)) return;
        try { await api("/api/v1/promote", { method: "POST", body: { name: j.name } }); await reload(); }
        catch (e) { ev.target.after(errorBox(e)); }
      } } }, "Promote") : ""),
  ];
}

async function failed() {
  const box = el("div", {});
  show(el("h2", {}, "Failed jobs, by error code"), box);
  async function load() {
    try {
      const { failures } = await api("/api/v1/failures");
      if (!failures.length) return box.replaceChildren(el("p", { class: "muted" }, "No failed job."));
      const cards = await Promise.all(failures.map(async (f) => {
        // Jobs whose files went back into the spool (retried_at) are history, not failures.
        const page = await api(`/api/v1/jobs?state=failed&error=${encodeURIComponent(f.code)}&retried=0&limit=10`);
        const retryAll = el("button", { "data-action": "retry-all", on: { click: async (ev) => {
          if (!confirm(`Run all ${f.count} jobs failed with ${f.code} again?`)) return;
          ev.target.disabled = true;
          try {
            const r = await api("/api/v1/failures/retry", { method: "POST", body: { code: f.code } });
            ev.target.after(el("span", { class: "muted" }, ` ${r.retried} sent again`),
              ...(r.errors || []).map((m) => el("div", { class: "error" }, m)));
          } catch (e) { ev.target.after(errorBox(e)); }
        } } }, `Retry all ${f.count}`);
        return el("section", { class: "card", "data-code": f.code },
          el("h3", {}, el("code", {}, f.code || "(none)"), ` — ${f.count} `, retryAll),
          f.meaning ? el("p", {}, f.meaning.replaceAll("`", "")) : "",
          f.what_to_do ? el("p", { class: "advice" }, "What to do: " + f.what_to_do.replaceAll("`", "")) : "",
          jobTable(page.jobs),
          f.count > page.jobs.length ? el("p", {}, el("a", { href: `#/jobs?state=failed&error=${encodeURIComponent(f.code)}&retried=0` }, `all ${f.count} »`)) : "");
      }));
      box.replaceChildren(...cards);
    } catch (e) { box.replaceChildren(errorBox(e)); }
  }
  listen((batch) => { if (batch.some((e) => e.type === "job.failed" || e.type === "job.queued")) { clearTimeout(failed.t); failed.t = setTimeout(load, 500); } });
  await load();
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
        el("thead", {}, el("tr", {}, ["task", "backend", "status", "runs", "failures", "next run", "last run", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, list.map((t) => el("tr", { "data-task": t.task_id },
          el("td", { class: "name" }, el("a", { href: `#/task/${encodeURIComponent(t.task_id)}` }, t.task_id)),
          el("td", {}, `${t.backend} ${t.category}`), el("td", {}, stateBadge(String(t.status).toLowerCase())),
          el("td", {}, String(t.age)), el("td", {}, String(t.num_failures)),
          el("td", {}, t.next_run_at || ""), el("td", {}, t.jobs && t.jobs.length ? `#${t.jobs[t.jobs.length - 1].job_number}` : ""),
          el("td", {}, taskButton("Reschedule", "/reschedule", t.task_id, load), taskButton("Remove", "/remove", t.task_id, load))))))
        : el("p", { class: "muted" }, "No task."));
    } catch (e) { box.replaceChildren(errorBox(e)); }
  }
  listen((batch) => { if (batch.some((e) => e.type.startsWith("task."))) { clearTimeout(tasks.t); tasks.t = setTimeout(load, 300); } });
  await load();
}
async function task(params, parts) {
  const id = decodeURIComponent(parts.join("/"));
  const box = el("div", {});
  show(el("h2", {}, "Task ", el("span", { class: "name" }, id)), box);
  async function load() {
    try {
      const t = await api(`/task/${encodeURIComponent(id)}`);
      const runs = (t.jobs || []).slice(-20).reverse();
      box.replaceChildren(el("dl", {},
        el("dt", {}, "status"), el("dd", {}, stateBadge(String(t.status).toLowerCase())),
        el("dt", {}, "backend"), el("dd", {}, `${t.backend} ${t.category}`),
        el("dt", {}, "arguments"), el("dd", {}, el("code", {}, JSON.stringify(t.backend_args))),
        el("dt", {}, "runs / failures"), el("dd", {}, `${t.age} / ${t.num_failures}`),
        el("dt", {}, "next run"), el("dd", {}, t.next_run_at || "—")),
        el("h3", {}, "Last runs"),
        runs.length ? el("table", { class: "runs" },
          el("thead", {}, el("tr", {}, ["run", "status", "new items", "already stored", "last item"].map((h) => el("th", {}, h)))),
          el("tbody", {}, runs.map((r) => {
            const sum = (r.result && r.result.summary) || {};
            return el("tr", {}, el("td", { class: "name" }, `${r.job_number} (${r.job_id})`), el("td", {}, r.job_status || ""),
              el("td", {}, sum.fetched !== undefined ? String(sum.fetched) : ""), el("td", {}, sum.skipped !== undefined ? String(sum.skipped) : ""),
              el("td", {}, sum.last_updated_on || ""));
          }))) : el("p", { class: "muted" }, "No run yet."),
        el("p", {}, taskButton("Reschedule", "/reschedule", id, load), taskButton("Remove", "/remove", id, () => { location.hash = "#/tasks"; })));
    } catch (e) { box.replaceChildren(errorBox(e)); }
  }
  listen((batch) => { if (batch.some((e) => e.type.startsWith("task.") && e.data.task === id)) { clearTimeout(task.t); task.t = setTimeout(load, 300); } });
  await load();
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
