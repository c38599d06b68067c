// sdash dashboard: a small single-page app over the read-only JSON API (/api/v1). No third-party
// code; every DOM node is built with createElement and text nodes; charts are SVG drawn here.
import { lineChart } from "./chart.js";

// ---------------------------------------------------------------------------------------------
// Helpers

const VENDORS = [
  ["pure", "Pure Storage FlashArray"],
  ["ontap", "NetApp ONTAP"],
  ["storagegrid", "NetApp StorageGRID"],
  ["datadomain", "Dell PowerProtect DataDomain"],
];
const VENDOR_NAME = Object.fromEntries(VENDORS);
const STATUSES = ["online", "unreachable", "auth_failed", "error", "pending"];
const SEVERITIES = ["critical", "error", "warning", "info"];
const SEV_RANK = { critical: 4, error: 3, warning: 2, info: 1 };
const LEVELS = ["debug", "info", "warning", "error", "critical"];
const CATEGORIES = ["connection", "authentication", "api_call", "data_query", "health"];
const DAY = 86400000;

/** Builds an element: h("a", {href: "#/", class: "x", onclick: fn}, "text", child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

/** Replaces the children of `el` (null and false are skipped, unlike replaceChildren). */
function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** Bytes in binary units with the unit shown: 1.5 TiB. */
export function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(Number(n))) return "—";
  let v = Number(n);
  let i = 0;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = i === 0 ? 0 : Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0;
  return `${v.toFixed(digits)} ${UNITS[i]}`;
}

function fmtPct(p) {
  return p === null || p === undefined ? "—" : `${Number(p).toFixed(1)} %`;
}

function fmtAge(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400 * 2) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function fmtTime(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function dayMs(day) {
  return Date.parse(`${day}T00:00:00Z`);
}

function isoDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

function healthClass(v) {
  return { ok: "b-ok", online: "b-ok", warning: "b-warn", error: "b-bad", critical: "b-bad", unreachable: "b-bad", auth_failed: "b-bad", info: "b-info" }[v] || "b-none";
}

function badge(value, label) {
  const text = value === null || value === undefined ? "pending" : String(value).replace("_", " ");
  return h("span", { class: `badge ${healthClass(value)}`, dataset: { value: value ?? "pending" } }, label ? `${label}: ${text}` : text);
}

function capacityBar(cap) {
  if (!cap || !cap.total_bytes) return h("div", { class: "cap" }, h("span", { class: "cap-text" }, "capacity unknown"));
  const pct = cap.used_pct ?? (cap.used_bytes / cap.total_bytes) * 100;
  const level = pct > 90 ? "crit" : pct > 75 ? "warn" : "ok";
  const fill = h("span");
  fill.style.width = `${Math.min(100, Math.max(0, pct)).toFixed(1)}%`;
  return h(
    "div",
    { class: "cap" },
    h("div", { class: `bar ${level}`, role: "img", "aria-label": `${pct.toFixed(1)} % used`, dataset: { level } }, fill),
    h("span", { class: "cap-text" }, `${fmtBytes(cap.used_bytes)} of ${fmtBytes(cap.total_bytes)} · ${fmtPct(pct)}`),
  );
}

function age(ms) {
  return h("span", { class: "nowrap", "data-age": ms || "", title: ms ? fmtTime(ms) : "" }, fmtAge(ms));
}

function select(label, name, options, value, onchange) {
  const sel = h(
    "select",
    { name, id: `f-${name}`, onchange: (e) => onchange(e.target.value) },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
  );
  return h("label", { class: "field", for: `f-${name}` }, label, sel);
}

function searchBox(label, name, value, placeholder, oninput) {
  let timer = 0;
  let last = (value || "").trim();
  const fire = (v) => {
    clearTimeout(timer);
    if (v === last) return;
    last = v;
    oninput(v);
  };
  const input = h("input", {
    type: "search",
    name,
    id: `f-${name}`,
    value: value || "",
    placeholder,
    autocomplete: "off",
    oninput: (e) => {
      clearTimeout(timer);
      const v = e.target.value.trim();
      timer = setTimeout(() => fire(v), 250);
    },
    // Clearing the field (its x button, or a script) fires only "change".
    onchange: (e) => fire(e.target.value.trim()),
    onkeydown: (e) => {
      if (e.key === "Enter") fire(e.target.value.trim());
    },
  });
  return h("label", { class: "field", for: `f-${name}` }, label, input);
}

function table(head, rows, opts = {}) {
  const t = h("table", { class: opts.class || "" }, h("thead", null, h("tr", null, head)), h("tbody", null, rows));
  if (opts.foot) t.append(h("tfoot", null, opts.foot));
  return h("div", { class: "table-wrap" }, t);
}

function emptyRow(cols, text) {
  return h("tr", null, h("td", { colspan: cols, class: "empty" }, text));
}

// ---------------------------------------------------------------------------------------------
// API access

const auth = { token: sessionStorage.getItem("sdash.token") || "" };

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function apiUrl(path, params) {
  const u = new URL(`/api/v1/${path}`, location.origin);
  if (params) {
    for (const [k, v] of Object.entries(params)) {
      if (v === null || v === undefined || v === "") continue;
      if (Array.isArray(v)) v.forEach((x) => u.searchParams.append(k, x));
      else u.searchParams.set(k, v);
    }
  }
  return u.pathname + u.search;
}

/**
 * A URL the browser opens by itself (EventSource, download links), which cannot carry an
 * Authorization header: the token goes in `access_token`, which the API accepts only on the live
 * stream and the CSV exports.
 */
function tokenUrl(path, params) {
  return apiUrl(path, auth.token ? { ...params, access_token: auth.token } : params);
}

async function api(path, params, signal) {
  const headers = { Accept: "application/json" };
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  let resp;
  try {
    resp = await fetch(apiUrl(path, params), { headers, signal, cache: "no-cache" });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    live.apiReachable(false);
    throw new HttpError(0, "the sdash API is not reachable");
  }
  live.apiReachable(true);
  if (resp.status === 401) {
    showTokenDialog();
    throw new HttpError(401, "a bearer token is required");
  }
  if (!resp.ok) {
    let msg = `${resp.status} ${resp.statusText}`;
    try {
      msg = (await resp.json()).error || msg;
    } catch (_) {
      /* not JSON */
    }
    throw new HttpError(resp.status, msg);
  }
  return resp.json();
}

/** Follows next_cursor up to `pages` pages and returns all items. */
async function apiAll(path, params, signal, pages = 10) {
  let items = [];
  let cursor = null;
  for (let i = 0; i < pages; i++) {
    const page = await api(path, { ...params, cursor }, signal);
    items = items.concat(page.items || []);
    cursor = page.next_cursor;
    if (!cursor) return { items, complete: true };
  }
  return { items, complete: false };
}

function showTokenDialog() {
  const main = document.getElementById("main");
  if (document.getElementById("token-form")) return;
  const input = h("input", { type: "password", id: "token", autocomplete: "off", required: true, "aria-label": "API token" });
  put(main, 
    h(
      "div",
      { class: "panel dialog" },
      h("h1", null, "API token required"),
      h("p", { class: "muted" }, "This sdash API asks for a bearer token. It is kept in this browser tab only."),
      h(
        "form",
        {
          id: "token-form",
          onsubmit: (e) => {
            e.preventDefault();
            auth.token = input.value.trim();
            sessionStorage.setItem("sdash.token", auth.token);
            live.connect();
            router.render();
          },
        },
        input,
        h("button", { type: "submit" }, "Use token"),
      ),
    ),
  );
  input.focus();
}

// ---------------------------------------------------------------------------------------------
// Live stream (Server-Sent Events) and the stale-data marker

const live = {
  es: null,
  open: false,
  api: true,
  lastMessage: 0,
  sawPing: false,
  // The server's ping interval (from the `hello` event); 15 s until it says otherwise.
  pingMs: 15000,
  retryMs: 1000,
  retryTimer: 0,
  listeners: new Set(),

  connect() {
    clearTimeout(this.retryTimer);
    if (this.es) this.es.close();
    this.es = null;
    this.open = false;
    // EventSource cannot send an Authorization header: the token goes in the URL.
    const es = new EventSource(tokenUrl("stream"));
    this.es = es;
    const seen = () => {
      this.lastMessage = Date.now();
      if (!this.open) {
        const wasDown = this.everOpen;
        this.open = true;
        this.everOpen = true;
        this.retryMs = 1000;
        this.update();
        if (wasDown) this.emit("resync", null);
      }
    };
    es.addEventListener("open", seen);
    es.addEventListener("hello", (e) => {
      try {
        const ms = Number(JSON.parse(e.data).ping_ms);
        if (ms > 0) this.pingMs = ms;
      } catch (_) {
        /* an older server: keep the default */
      }
      seen();
    });
    es.addEventListener("ping", () => {
      this.sawPing = true;
      seen();
    });
    for (const kind of ["snapshot", "event", "system"]) {
      es.addEventListener(kind, (e) => {
        seen();
        let data;
        try {
          data = JSON.parse(e.data);
        } catch (_) {
          return;
        }
        this.emit(kind, data);
      });
    }
    es.addEventListener("error", () => {
      if (this.es !== es) return;
      this.open = false;
      this.update();
      probe();
      if (es.readyState === EventSource.CLOSED) {
        // The server answered with an error (e.g. 503 while NATS is down): retry with backoff.
        es.close();
        this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 30000);
      }
    });
  },

  apiReachable(ok) {
    if (ok === this.api) return;
    this.api = ok;
    this.update();
    if (ok) {
      if (!this.open) this.connect();
      this.emit("resync", null);
    }
  },

  emit(kind, data) {
    for (const fn of this.listeners) {
      try {
        fn(kind, data);
      } catch (e) {
        console.warn("live listener failed", e);
      }
    }
  },

  update() {
    const ok = this.api && this.open;
    const el = document.getElementById("live");
    const text = document.getElementById("live-text");
    const stale = document.getElementById("stale");
    const detail = document.getElementById("stale-detail");
    if (!el) return;
    el.dataset.state = ok ? "live" : this.everOpen || !this.api ? "down" : "connecting";
    text.textContent = ok ? "Live" : this.api ? "Reconnecting…" : "Offline";
    const showStale = !ok && (this.everOpen || !this.api || this.failedOnce);
    stale.hidden = !showStale;
    if (showStale) {
      const since = this.lastMessage ? `last update ${fmtTime(this.lastMessage)}; ` : "";
      detail.textContent = this.api
        ? `${since}the live stream is not connected, retrying (the page refreshes every 30 s meanwhile).`
        : `${since}the sdash API does not answer, retrying.`;
    }
    document.documentElement.dataset.live = showStale ? "stale" : "live";
  },
};

// A watchdog, every 10 s. While the stream is open, its `ping` events (every pingMs) prove the
// server and the connection alive; a stream silent for 3 pings is reconnected. Without fresh
// pings the API is probed (/api/v1/status), so a dead server shows as stale; without an open
// stream the current page refreshes every 30 s.
let lastPoll = Date.now();

/** Asks the API whether it answers; marks the page stale when it does not. */
async function probe() {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), 5000);
  try {
    const headers = auth.token ? { Authorization: `Bearer ${auth.token}` } : {};
    const r = await fetch("/api/v1/status", { cache: "no-store", signal: ctrl.signal, headers });
    live.apiReachable(r.status > 0);
  } catch (_) {
    live.apiReachable(false);
  } finally {
    clearTimeout(timer);
  }
}

setInterval(async () => {
  const fresh = live.open && live.sawPing && Date.now() - live.lastMessage < 2 * live.pingMs;
  if (!fresh) await probe();
  if (live.es && live.open && live.sawPing && Date.now() - live.lastMessage > 3 * live.pingMs) {
    live.open = false;
    live.connect();
  }
  if (!live.open && live.es && live.es.readyState !== EventSource.OPEN) live.failedOnce = true;
  live.update();
  if ((!live.open || !live.api) && Date.now() - lastPoll > 30000) {
    lastPoll = Date.now();
    if (live.api) live.emit("resync", null);
  }
  if (live.open) lastPoll = Date.now();
}, 10000);

// Ages ("12 s ago") tick without re-rendering.
setInterval(() => {
  for (const el of document.querySelectorAll("[data-age]")) {
    const ms = Number(el.dataset.age);
    if (ms) el.textContent = fmtAge(ms);
  }
}, 5000);

// ---------------------------------------------------------------------------------------------
// Theme

function currentTheme() {
  const t = document.documentElement.dataset.theme;
  if (t === "light" || t === "dark") return t;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function setTheme(t) {
  document.documentElement.dataset.theme = t;
  try {
    localStorage.setItem("sdash.theme", t);
  } catch (_) {
    /* storage disabled */
  }
  const btn = document.getElementById("theme-toggle");
  btn.setAttribute("aria-label", t === "dark" ? "Switch to light theme" : "Switch to dark theme");
  btn.setAttribute("aria-pressed", String(t === "dark"));
}

// ---------------------------------------------------------------------------------------------
// Router: #/path?query (hash routing; filters live in the query so a URL can be shared)

const router = {
  page: null,
  gen: 0,

  parse() {
    const raw = location.hash.slice(1) || "/";
    const q = raw.indexOf("?");
    const path = q < 0 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
    return { path: path || "/", params };
  },

  /** Rewrites the query of the current route without re-rendering (filters). */
  setParams(params) {
    const { path } = this.parse();
    const clean = new URLSearchParams();
    for (const [k, v] of params) if (v !== "" && v !== null && v !== undefined) clean.append(k, v);
    const qs = clean.toString();
    history.replaceState(null, "", `#${path}${qs ? `?${qs}` : ""}`);
  },

  render() {
    const { path, params } = this.parse();
    const gen = ++this.gen;
    if (this.ctx) this.ctx.ctrl.abort();
    let page;
    let nav;
    let m;
    if (path === "/" || path === "/fleet") {
      page = fleetPage;
      nav = "fleet";
    } else if (path === "/alerts") {
      page = alertsPage;
      nav = "alerts";
    } else if (path === "/capacity") {
      page = capacityPage;
      nav = "capacity";
    } else if (path === "/events") {
      page = eventsPage;
      nav = "events";
    } else if ((m = path.match(/^\/systems\/([a-z0-9_-]{1,64})$/))) {
      page = systemPage(m[1]);
      nav = "fleet";
    } else {
      page = notFoundPage;
    }
    for (const a of document.querySelectorAll("[data-nav]")) {
      if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    const main = document.getElementById("main");
    if (path !== this.lastPath) window.scrollTo(0, 0);
    this.lastPath = path;
    const ctx = { main, params, gen, ctrl: new AbortController(), alive: () => gen === this.gen };
    this.page = page;
    this.ctx = ctx;
    document.title = `${page.title || "sdash"} · sdash`;
    main.dataset.page = page.name || "unknown";
    page.render(ctx).catch((e) => showError(ctx, e));
  },
};

function showError(ctx, e) {
  if (e && e.name === "AbortError") return;
  if (!ctx.alive() || (e && e.status === 401)) return;
  console.warn(e);
  const box = h("div", { class: "error-box", role: "alert" }, `Could not load this page: ${e && e.message ? e.message : e}`);
  ctx.main.prepend(box);
  const loading = ctx.main.querySelector(".loading");
  if (loading) loading.remove();
}

live.listeners.add((kind, data) => {
  const p = router.page;
  const ctx = router.ctx;
  if (!p || !ctx || !ctx.alive()) return;
  if (kind === "resync") {
    if (p.refresh) p.refresh(ctx);
    return;
  }
  const name = `on_${kind}`;
  if (typeof p[name] === "function") p[name](ctx, data);
});

/** Runs a page's reload from an event handler; failures show on the page. */
function safe(ctx, promise) {
  promise.catch((e) => showError(ctx, e));
}

/** Calls `fn` once, `ms` after the first of a burst of calls (the later ones merge into it). */
function throttle(fn, ms) {
  let t = 0;
  let last = [];
  return function (...args) {
    last = args;
    if (t) return;
    t = setTimeout(() => {
      t = 0;
      fn.apply(this, last);
    }, ms);
  };
}

function debounce(fn, ms) {
  let t = 0;
  return function (...args) {
    clearTimeout(t);
    t = setTimeout(() => fn.apply(this, args), ms);
  };
}

// ---------------------------------------------------------------------------------------------
// Fleet overview

function statusLevel(s) {
  if (!s.status) return "";
  if (s.status !== "online") return "st-bad";
  if (s.hardware === "error" || s.cluster === "error") return "st-bad";
  if (s.hardware === "warning" || s.cluster === "warning" || (s.alert_count || 0) > 0) return "st-warn";
  return "st-ok";
}

function tagsOf(s) {
  return Object.entries(s.tags || {}).map(([k, v]) => h("span", { class: "tag" }, `${k}: ${v}`));
}

function systemCard(s) {
  const link = h("a", { href: `#/systems/${s.id}`, class: "card-title" }, s.name || s.id);
  return h(
    "article",
    { class: `card ${statusLevel(s)}`, "data-system-id": s.id, "aria-label": `System ${s.name || s.id}` },
    h(
      "div",
      { class: "card-head" },
      h("div", null, link, h("div", { class: "card-sub" }, s.id, s.model ? ` · ${s.model}` : "")),
      h("span", { class: "st" }, badge(s.status)),
    ),
    h(
      "dl",
      { class: "kv" },
      h("dt", null, "Hardware"),
      h("dd", { class: "hw" }, badge(s.hardware ?? "unknown")),
      h("dt", null, "Cluster"),
      h("dd", { class: "cl" }, badge(s.cluster ?? "unknown")),
      h("dt", null, "Open alerts"),
      h("dd", { class: "alerts" }, alertCount(s)),
      h("dt", null, "Last poll"),
      h("dd", null, age(s.last_poll_at_ms), s.stale ? h("span", { class: "badge b-warn", title: "older than 3 poll intervals" }, " overdue") : null),
    ),
    capacityBar(s.capacity),
    s.error && s.status !== "online" ? h("div", { class: "err" }, s.error) : null,
    Object.keys(s.tags || {}).length ? h("div", null, tagsOf(s)) : null,
  );
}

function alertCount(s) {
  const n = s.alert_count;
  if (n === null || n === undefined) return h("span", { class: "muted" }, "—");
  if (n === 0) return h("span", { class: "muted", "data-count": 0 }, "0");
  return h("a", { href: `#/alerts?system=${encodeURIComponent(s.id)}`, class: "badge b-warn", "data-count": n }, `${n} open`);
}

function systemRow(s) {
  return h(
    "tr",
    { "data-system-id": s.id, class: statusLevel(s) },
    h("td", null, h("a", { href: `#/systems/${s.id}` }, s.name || s.id), h("div", { class: "card-sub" }, s.id)),
    h("td", { class: "st" }, badge(s.status)),
    h("td", { class: "hw" }, badge(s.hardware ?? "unknown")),
    h("td", { class: "cl hide-sm" }, badge(s.cluster ?? "unknown")),
    h("td", { class: "alerts" }, alertCount(s)),
    h("td", null, capacityBar(s.capacity)),
    h("td", { class: "hide-sm" }, age(s.last_poll_at_ms)),
  );
}

function applySnapshot(s, env) {
  const b = env.body || {};
  if (s.last_poll_at_ms && env.observed_at < s.last_poll_at_ms) return false;
  s.status = b.status ?? s.status;
  s.hardware = b.hardware ?? s.hardware;
  s.cluster = b.cluster ?? s.cluster;
  s.version = b.version ?? s.version;
  s.model = b.model ?? s.model;
  s.error = b.error ?? null;
  s.alert_count = Array.isArray(b.alerts) ? b.alerts.length : s.alert_count;
  if (b.capacity) {
    const c = b.capacity;
    s.capacity = {
      total_bytes: c.total_bytes,
      used_bytes: c.used_bytes,
      free_bytes: c.free_bytes,
      used_pct: c.total_bytes ? Math.round((c.used_bytes / c.total_bytes) * 10000) / 100 : null,
      data_reduction: c.data_reduction ?? null,
    };
  }
  s.last_poll_at_ms = env.observed_at;
  s.stale = false;
  return true;
}

const fleetPage = {
  name: "fleet",
  title: "Fleet",
  systems: [],
  async render(ctx) {
    const p = ctx.params;
    const view = localStorage.getItem("sdash.view") === "table" ? "table" : "cards";
    const state = {
      vendor: p.get("vendor") || "",
      status: p.get("status") || "",
      tag: p.get("tag") || "",
      q: p.get("q") || "",
    };
    const update = (k, v) => {
      state[k] = v;
      router.setParams(Object.entries(state));
      this.load(ctx, state);
    };
    const viewBtn = (v, label) =>
      h(
        "button",
        {
          type: "button",
          "aria-pressed": String(view === v),
          "data-view": v,
          onclick: () => {
            localStorage.setItem("sdash.view", v);
            router.render();
          },
        },
        label,
      );
    ctx.view = view;
    put(ctx.main, 
      h("h1", null, "Fleet overview"),
      h("div", { class: "tiles", id: "fleet-tiles" }),
      h(
        "div",
        { class: "toolbar", role: "search" },
        select("Vendor", "vendor", [["", "All vendors"], ...VENDORS], state.vendor, (v) => update("vendor", v)),
        select(
          "Status",
          "status",
          [["", "Any status"], ...STATUSES.map((s) => [s, s.replace("_", " ")])],
          state.status,
          (v) => update("status", v),
        ),
        searchBox("Tag (key:value)", "tag", state.tag, "environment:production", (v) => update("tag", v)),
        searchBox("Search", "q", state.q, "id, name or address", (v) => update("q", v)),
        h("span", { class: "spacer" }),
        h("div", { class: "seg", role: "group", "aria-label": "View" }, viewBtn("cards", "Cards"), viewBtn("table", "Table")),
      ),
      h("div", { id: "fleet-body" }, h("p", { class: "loading" }, "Loading systems…")),
    );
    this.state = state;
    await this.load(ctx, state);
  },

  async load(ctx, state) {
    const gen = (this.loadGen = (this.loadGen || 0) + 1);
    const params = { vendor: state.vendor, status: state.status, q: state.q, limit: 1000, sort: "name" };
    if (state.tag) params.tag = state.tag.includes(":") ? state.tag : `${state.tag}:`;
    const body = document.getElementById("fleet-body");
    let list;
    try {
      list = await apiAll("systems", params, ctx.ctrl.signal);
    } catch (e) {
      if (gen !== this.loadGen || e.name === "AbortError") return;
      put(body, h("div", { class: "error-box", role: "alert" }, `Could not load systems: ${e.message}`));
      return;
    }
    if (gen !== this.loadGen || !ctx.alive()) return;
    this.systems = list.items;
    this.complete = list.complete;
    this.draw(ctx);
  },

  draw(ctx) {
    const body = document.getElementById("fleet-body");
    if (!body) return;
    const systems = this.systems;
    this.drawTiles();
    if (!systems.length) {
      put(body, h("p", { class: "empty", id: "no-systems" }, "No systems match these filters."));
      return;
    }
    const groups = new Map();
    for (const s of systems) {
      const v = s.vendor || "unknown";
      if (!groups.has(v)) groups.set(v, []);
      groups.get(v).push(s);
    }
    const order = [...VENDORS.map(([v]) => v), "unknown"];
    const sections = order
      .filter((v) => groups.has(v))
      .map((v) => {
        const list = groups.get(v);
        const content =
          ctx.view === "table"
            ? table(
                ["System", "Status", "Hardware", "Cluster", "Alerts", "Capacity", "Last poll"].map((t, i) =>
                  h("th", { scope: "col", class: i === 3 || i === 6 ? "hide-sm" : null }, t),
                ),
                list.map(systemRow),
              )
            : h("div", { class: "cards" }, list.map(systemCard));
        return h(
          "section",
          { class: "vendor-group", "data-vendor": v, "aria-label": VENDOR_NAME[v] || "Unknown vendor" },
          h("h2", null, VENDOR_NAME[v] || "Unknown vendor", h("span", { class: "count" }, `${list.length} ${list.length === 1 ? "system" : "systems"}`)),
          content,
        );
      });
    if (!this.complete) sections.push(h("p", { class: "muted" }, "Showing the first systems only: narrow the filters to see the rest."));
    put(body, ...sections);
  },

  drawTiles() {
    const tiles = document.getElementById("fleet-tiles");
    if (!tiles) return;
    const systems = this.systems;
    const online = systems.filter((s) => s.status === "online").length;
    const down = systems.filter((s) => s.status && s.status !== "online").length;
    const alerts = systems.reduce((n, s) => n + (s.alert_count || 0), 0);
    let used = 0;
    let total = 0;
    for (const s of systems) {
      if (s.capacity && s.capacity.total_bytes) {
        used += s.capacity.used_bytes || 0;
        total += s.capacity.total_bytes;
      }
    }
    const tile = (k, v, id) => h("div", { class: "tile", id }, h("div", { class: "k" }, k), h("div", { class: "v" }, v));
    put(tiles, 
      tile("Systems shown", String(systems.length), "tile-systems"),
      tile("Online", String(online), "tile-online"),
      tile("Not online", String(down), "tile-down"),
      tile("Open alerts", String(alerts), "tile-alerts"),
      tile("Used capacity", total ? `${fmtBytes(used)} / ${fmtBytes(total)}` : "—", "tile-capacity"),
    );
  },

  refresh(ctx) {
    if (this.state) this.load(ctx, this.state);
  },

  on_snapshot(ctx, env) {
    const s = this.systems.find((x) => x.id === env.system_id);
    if (!s) {
      // A system not on the page (new, or changed to match the filters): refetch, and once
      // more a little later in case the writer had not committed it yet.
      this.refetchSoon(ctx);
      setTimeout(() => this.refetchSoon(ctx), 4000);
      return;
    }
    if (!applySnapshot(s, env)) return;
    const st = this.state || {};
    if ((st.status && (s.status || "pending") !== st.status) || st.vendor !== "" && s.vendor !== st.vendor) {
      this.refetchSoon(ctx);
      return;
    }
    const old = document.querySelector(`#fleet-body [data-system-id="${CSS.escape(s.id)}"]`);
    if (old) {
      const fresh = ctx.view === "table" ? systemRow(s) : systemCard(s);
      fresh.classList.add("flash");
      old.replaceWith(fresh);
    }
    this.drawTiles();
  },

  on_system(ctx) {
    this.refetchSoon(ctx);
  },

  refetchSoon: throttle(function (ctx) {
    if (ctx.alive()) fleetPage.load(ctx, fleetPage.state);
  }, 1000),
};

// ---------------------------------------------------------------------------------------------
// Alerts

const ALERT_COLS = [
  ["severity", "Severity", (a) => SEV_RANK[a.severity] || 0],
  ["system", "System", (a) => (a.system_name || a.system_id).toLowerCase()],
  ["title", "Title", (a) => (a.title || "").toLowerCase()],
  ["component", "Component", (a) => (a.component || "").toLowerCase()],
  ["first_seen", "First seen", (a) => a.first_seen_ms || 0],
];

const alertsPage = {
  name: "alerts",
  title: "Alerts",
  async render(ctx) {
    const p = ctx.params;
    const state = {
      state: ["open", "cleared", "all"].includes(p.get("state")) ? p.get("state") : "open",
      severity: p.get("severity") || "",
      vendor: p.get("vendor") || "",
      system: p.get("system") || "",
      q: p.get("q") || "",
      sort: p.get("sort") || "severity",
      dir: p.get("dir") === "asc" ? "asc" : "desc",
    };
    this.state = state;
    const update = (k, v, reload = true) => {
      state[k] = v;
      router.setParams(Object.entries(state).filter(([key, val]) => !(key === "state" && val === "open")));
      if (reload) safe(ctx, this.load(ctx));
      else this.draw(ctx);
    };
    this.update = update;
    const stateBtn = (v, label) =>
      h("button", { type: "button", "aria-pressed": String(state.state === v), "data-state": v, onclick: (e) => {
        for (const b of e.target.parentNode.children) b.setAttribute("aria-pressed", String(b === e.target));
        update("state", v);
      } }, label);
    put(ctx.main, 
      h("h1", null, "Alerts"),
      h(
        "div",
        { class: "toolbar", role: "search" },
        h("div", { class: "seg", role: "group", "aria-label": "Alert state" }, stateBtn("open", "Open"), stateBtn("cleared", "Cleared"), stateBtn("all", "All")),
        select("Severity", "severity", [["", "Any severity"], ...SEVERITIES.map((s) => [s, s])], state.severity, (v) => update("severity", v)),
        select("Vendor", "vendor", [["", "All vendors"], ...VENDORS], state.vendor, (v) => update("vendor", v)),
        searchBox("Filter text", "q", state.q, "system, title, component", (v) => update("q", v, false)),
        state.system ? h("span", { class: "tag" }, `system: ${state.system} `, h("a", { href: "#/alerts" }, "×")) : null,
      ),
      h("div", { id: "alerts-body" }, h("p", { class: "loading" }, "Loading alerts…")),
    );
    await this.load(ctx);
  },

  async load(ctx) {
    const st = this.state;
    const gen = (this.loadGen = (this.loadGen || 0) + 1);
    const res = await apiAll("alerts", { state: st.state, severity: st.severity, vendor: st.vendor, system: st.system, limit: 1000 }, ctx.ctrl.signal, 5);
    if (gen !== this.loadGen || !ctx.alive()) return;
    this.alerts = res.items;
    this.complete = res.complete;
    this.draw(ctx);
  },

  draw(ctx) {
    const st = this.state;
    const body = document.getElementById("alerts-body");
    if (!body) return;
    const q = st.q.toLowerCase();
    let rows = this.alerts.filter(
      (a) => !q || [a.system_id, a.system_name, a.title, a.component, a.vendor_severity, a.alert_id].some((x) => x && String(x).toLowerCase().includes(q)),
    );
    const col = ALERT_COLS.find((c) => c[0] === st.sort) || ALERT_COLS[0];
    const sign = st.dir === "asc" ? 1 : -1;
    rows = rows.slice().sort((a, b) => {
      const x = col[2](a);
      const y = col[2](b);
      if (x < y) return -sign;
      if (x > y) return sign;
      return (b.first_seen_ms || 0) - (a.first_seen_ms || 0);
    });
    const head = ALERT_COLS.map(([key, label]) => {
      const active = key === st.sort;
      return h(
        "th",
        { scope: "col", "aria-sort": active ? (st.dir === "asc" ? "ascending" : "descending") : null, "data-col": key },
        h(
          "button",
          {
            type: "button",
            class: "sort",
            onclick: () => {
              const dir = active ? (st.dir === "asc" ? "desc" : "asc") : key === "severity" || key === "first_seen" ? "desc" : "asc";
              st.dir = dir;
              this.update("sort", key, false);
            },
          },
          label,
          active ? (st.dir === "asc" ? " ▲" : " ▼") : "",
        ),
      );
    });
    if (st.state !== "open") head.push(h("th", { scope: "col" }, "Cleared"));
    const tr = rows.map((a) =>
      h(
        "tr",
        { "data-alert-id": a.id, "data-system": a.system_id, "data-severity": a.severity },
        h("td", null, badge(a.severity), a.vendor_severity && a.vendor_severity !== a.severity ? h("div", { class: "card-sub" }, a.vendor_severity) : null),
        h("td", null, h("a", { href: `#/systems/${a.system_id}` }, a.system_name || a.system_id), h("div", { class: "card-sub" }, VENDOR_NAME[a.vendor] || a.vendor || "")),
        h("td", { class: "msg" }, a.title),
        h("td", null, a.component || h("span", { class: "muted" }, "—")),
        h("td", { class: "nowrap" }, fmtTime(a.first_seen_ms), h("div", { class: "card-sub" }, fmtAge(a.first_seen_ms))),
        st.state !== "open" ? h("td", { class: "nowrap" }, a.cleared_at_ms ? fmtTime(a.cleared_at_ms) : h("span", { class: "badge b-warn" }, "open")) : null,
      ),
    );
    put(body, 
      h("p", { class: "muted", id: "alerts-count" }, `${rows.length} ${st.state === "open" ? "open " : st.state === "cleared" ? "cleared " : ""}alert${rows.length === 1 ? "" : "s"}${this.complete ? "" : " (first 5000 shown)"}`),
      table(head, tr.length ? tr : [emptyRow(head.length, "No alerts match.")], { class: "alerts-table" }),
    );
  },

  refresh(ctx) {
    this.load(ctx).catch(() => {});
  },
  on_snapshot(ctx, env) {
    const b = env.body || {};
    const st = this.state;
    // The writer derives alerts from online snapshots only; skip what the filters hide and
    // snapshots whose alerts are the ones already shown.
    if (b.status !== "online" || !this.alerts) return;
    if ((st.system && env.system_id !== st.system) || (st.vendor && b.vendor !== st.vendor)) return;
    if (st.state === "open" && this.complete) {
      const sev = st.severity ? st.severity.split(",") : null;
      const shown = new Set(this.alerts.filter((a) => a.system_id === env.system_id).map((a) => a.alert_id));
      const now = new Set((b.alerts || []).filter((a) => !sev || sev.includes(a.severity)).map((a) => a.id));
      if (shown.size === now.size && [...now].every((id) => shown.has(id))) return;
    }
    this.reloadSoon(ctx);
  },
  reloadSoon: throttle((ctx) => {
    if (ctx.alive()) alertsPage.load(ctx).catch(() => {});
  }, 1500),
};

// ---------------------------------------------------------------------------------------------
// One system

const RANGES = [
  ["30d", "30 days", 30],
  ["90d", "3 months", 91],
  ["180d", "6 months", 182],
  ["1y", "1 year", 365],
  ["2y", "2 years", 730],
];

function systemPage(id) {
  return {
    name: "system",
    title: id,
    async render(ctx) {
      const p = ctx.params;
      this.range = RANGES.find((r) => r[0] === p.get("range")) || RANGES[1];
      this.level = p.get("level") || "";
      this.category = p.get("category") || "";
      put(ctx.main, h("p", { class: "crumb" }, h("a", { href: "#/" }, "Fleet"), " / ", id), h("p", { class: "loading" }, "Loading…"));
      let s;
      try {
        s = await api(`systems/${id}`, null, ctx.ctrl.signal);
      } catch (e) {
        if (e.status === 404) {
          put(ctx.main, h("h1", null, "Unknown system"), h("p", null, `There is no system with id ${id}. `, h("a", { href: "#/" }, "Back to the fleet")));
          return;
        }
        throw e;
      }
      if (!ctx.alive()) return;
      this.sys = s;
      document.title = `${s.name} · sdash`;
      const setParam = () => router.setParams([["range", this.range[0]], ["level", this.level], ["category", this.category]]);
      put(ctx.main, 
        h("p", { class: "crumb" }, h("a", { href: "#/" }, "Fleet"), " / ", VENDOR_NAME[s.vendor] || s.vendor || "", " / ", s.id),
        h("div", { id: "sys-head" }),
        h(
          "div",
          { class: "grid2" },
          h(
            "section",
            { class: "panel", "aria-labelledby": "cap-h" },
            h("h2", { id: "cap-h" }, "Capacity"),
            h("div", { class: "toolbar" }, select("Range", "range", RANGES.map((r) => [r[0], r[1]]), this.range[0], (v) => {
              this.range = RANGES.find((r) => r[0] === v) || RANGES[1];
              setParam();
              safe(ctx, this.loadCapacity(ctx));
            })),
            h("div", { id: "sys-capacity" }, h("p", { class: "loading" }, "Loading capacity…")),
          ),
          h("section", { class: "panel", "aria-labelledby": "info-h" }, h("h2", { id: "info-h" }, "System"), h("div", { id: "sys-info" })),
        ),
        h("section", { class: "panel", "aria-labelledby": "al-h" }, h("h2", { id: "al-h" }, "Open alerts"), h("div", { id: "sys-alerts" })),
        h("section", { class: "panel", "aria-labelledby": "co-h" }, h("h2", { id: "co-h" }, "Components"), h("div", { id: "sys-components" })),
        h(
          "section",
          { class: "panel", "aria-labelledby": "ev-h" },
          h("h2", { id: "ev-h" }, "Recent events"),
          h(
            "div",
            { class: "toolbar" },
            select("Minimum level", "level", [["", "Any level"], ...LEVELS.map((l) => [l, l])], this.level, (v) => {
              this.level = v;
              setParam();
              safe(ctx, this.loadEvents(ctx, false));
            }),
            select("Category", "category", [["", "Any category"], ...CATEGORIES.map((c) => [c, c.replace("_", " ")])], this.category, (v) => {
              this.category = v;
              setParam();
              safe(ctx, this.loadEvents(ctx, false));
            }),
          ),
          h("div", { id: "sys-events" }),
        ),
        h("section", { class: "panel", "aria-labelledby": "tr-h" }, h("h2", { id: "tr-h" }, "Status changes"), h("div", { id: "sys-transitions" })),
      );
      this.drawDetail(ctx);
      await Promise.all([this.loadCapacity(ctx), this.loadEvents(ctx, false)]);
    },

    drawDetail() {
      const s = this.sys;
      put(document.getElementById("sys-head"), 
        h(
          "div",
          { class: "sys-head" },
          h("h1", null, s.name),
          h("span", { id: "sys-status" }, badge(s.status)),
          h("span", { id: "sys-hardware" }, badge(s.hardware ?? "unknown", "hardware")),
          h("span", { id: "sys-cluster" }, badge(s.cluster ?? "unknown", "cluster")),
          h("span", { class: "muted" }, "last poll ", age(s.last_poll_at_ms)),
        ),
        s.error ? h("div", { class: "error-box" }, `Last poll: ${s.error}`) : null,
      );
      const row = (k, v) => (v === null || v === undefined || v === "" ? null : [h("dt", null, k), h("dd", null, v)]);
      put(document.getElementById("sys-info"), 
        h(
          "dl",
          { class: "kv" },
          row("Id", h("code", null, s.id)),
          row("Vendor", VENDOR_NAME[s.vendor] || s.vendor),
          row("Model", s.model),
          row("Version", s.version),
          row("Serial", s.serial),
          row("Address", s.address),
          row("Reported name", s.reported_name),
          row("Poll interval", s.poll_interval_s ? `${s.poll_interval_s} s` : null),
          row("Last poll", s.last_poll_at_ms ? `${fmtTime(s.last_poll_at_ms)} (${s.last_poll_duration_ms ?? "?"} ms)` : "never"),
          row("Last online", s.last_online_at_ms ? fmtTime(s.last_online_at_ms) : null),
          row("Collector", s.collector_id),
          row("Data reduction", s.capacity && s.capacity.data_reduction ? `${s.capacity.data_reduction.toFixed(1)} : 1` : null),
        ),
        h("div", null, tagsOf(s)),
      );
      const alerts = s.open_alerts || [];
      put(document.getElementById("sys-alerts"), 
        alerts.length
          ? table(
              ["Severity", "Title", "Component", "First seen"].map((t) => h("th", { scope: "col" }, t)),
              alerts
                .slice()
                .sort((a, b) => (SEV_RANK[b.severity] || 0) - (SEV_RANK[a.severity] || 0))
                .map((a) => h("tr", { "data-severity": a.severity }, h("td", null, badge(a.severity)), h("td", { class: "msg" }, a.title), h("td", null, a.component || "—"), h("td", { class: "nowrap" }, fmtTime(a.first_seen_ms)))),
            )
          : h("p", { class: "muted", id: "no-alerts" }, "No open alerts."),
      );
      const rank = { error: 0, warning: 1, unknown: 2, ok: 3 };
      const comps = (s.components || []).slice().sort((a, b) => (rank[a.status] ?? 2) - (rank[b.status] ?? 2) || a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
      put(document.getElementById("sys-components"), 
        comps.length
          ? table(
              ["Kind", "Name", "Status", "Detail"].map((t) => h("th", { scope: "col" }, t)),
              comps.map((c) => h("tr", { "data-status": c.status }, h("td", null, c.kind), h("td", null, c.name), h("td", null, badge(c.status)), h("td", { class: "msg" }, c.detail || ""))),
            )
          : h("p", { class: "muted" }, "No components reported."),
      );
      const tr = s.transitions || [];
      put(document.getElementById("sys-transitions"), 
        tr.length
          ? table(
              ["When", "What", "From", "To"].map((t) => h("th", { scope: "col" }, t)),
              tr.map((t) => h("tr", null, h("td", { class: "nowrap" }, fmtTime(t.at_ms)), h("td", null, t.field), h("td", null, t.from ? badge(t.from) : h("span", { class: "muted" }, "—")), h("td", null, badge(t.to)))),
            )
          : h("p", { class: "muted" }, "No status changes recorded."),
      );
    },

    async loadCapacity(ctx) {
      const box = document.getElementById("sys-capacity");
      const days = this.range[2];
      const now = Date.now();
      const from = new Date(now - days * DAY).toISOString();
      const [daily, forecast] = await Promise.all([
        api(`systems/${id}/capacity`, { resolution: "daily", from }, ctx.ctrl.signal),
        api(`systems/${id}/forecast`, { days: Math.min(90, days), horizon: Math.max(90, Math.min(365, days)) }, ctx.ctrl.signal).catch(() => null),
      ]);
      if (!ctx.alive()) return;
      let points = (daily.points || []).filter((pt) => pt.total_bytes !== null).map((pt) => ({ x: dayMs(pt.day), used: pt.used_bytes, total: pt.total_bytes }));
      if (points.length < 2) {
        const raw = await api(`systems/${id}/capacity`, { resolution: "raw", from }, ctx.ctrl.signal);
        points = (raw.points || []).filter((pt) => pt.total_bytes !== null).map((pt) => ({ x: pt.at_ms, used: pt.used_bytes, total: pt.total_bytes }));
      }
      const s = this.sys;
      const cap = s.capacity;
      const series = [
        { label: "Used", cls: "s0", area: true, points: points.map((pt) => ({ x: pt.x, y: pt.used })) },
        { label: "Total", cls: "total", points: points.map((pt) => ({ x: pt.x, y: pt.total })), noDots: true },
      ];
      let fcText = null;
      if (forecast && forecast.projection && forecast.projection.length > 1) {
        series.push({ label: "Forecast", cls: "forecast-line", noDots: true, points: forecast.projection.map((pt) => ({ x: dayMs(pt.day), y: pt.used_bytes })) });
      }
      if (forecast) {
        const trend = forecast.trend;
        const full = forecast.date_100_pct;
        fcText = h(
          "div",
          { class: "forecast", id: "forecast" },
          h("span", null, "Trend: ", h("strong", null, trend.replace("_", " "))),
          forecast.slope_bytes_per_day !== null && forecast.slope_bytes_per_day !== undefined
            ? h("span", null, "Growth: ", h("strong", null, `${forecast.slope_bytes_per_day < 0 ? "−" : ""}${fmtBytes(Math.abs(forecast.slope_bytes_per_day))}/day`))
            : null,
          h("span", null, "90 % on: ", h("strong", { id: "date-90" }, forecast.date_90_pct || "—")),
          h("span", null, "Projected full: ", h("strong", { id: "date-full" }, full || (trend === "insufficient_data" ? `not enough data (${forecast.points_used} of ${forecast.min_points ?? 3} days)` : "not within the horizon"))),
        );
      }
      const total = cap ? cap.total_bytes : points.length ? points[points.length - 1].total : null;
      const chart = lineChart({
        width: box.clientWidth,
        series,
        yFormat: fmtBytes,
        markers: total ? [{ y: total * 0.9, label: "90 %", cls: "limit" }] : [],
        xMin: now - days * DAY,
        today: now,
        ariaLabel: `Used capacity of ${s.name} over ${this.range[1]}`,
        id: "capacity-chart",
      });
      put(box, 
        cap ? capacityBar(cap) : h("p", { class: "muted" }, "No capacity reported."),
        fcText,
        h("div", { class: "chart-box" }, chart),
        h(
          "ul",
          { class: "legend" },
          h("li", null, h("span", { class: "sw s0" }), "Used"),
          h("li", null, h("span", { class: "sw dash" }), "Total"),
          series.length > 2 ? h("li", null, h("span", { class: "sw fc" }), "Forecast (linear trend)") : null,
        ),
      );
    },

    async loadEvents(ctx, more) {
      const box = document.getElementById("sys-events");
      const res = await api(`systems/${id}/events`, { level: this.level, category: this.category, limit: 50, cursor: more ? this.cursor : null }, ctx.ctrl.signal);
      if (!ctx.alive()) return;
      this.events = more ? this.events.concat(res.items) : res.items;
      this.cursor = res.next_cursor;
      put(box, 
        eventsTable(this.events, false),
        this.cursor ? h("div", { class: "more" }, h("button", { type: "button", id: "events-more", onclick: () => safe(ctx, this.loadEvents(ctx, true)) }, "Older events")) : null,
      );
    },

    refresh(ctx) {
      this.reload(ctx);
    },
    reload: throttle(async function (ctx) {
      if (!ctx.alive()) return;
      try {
        const s = await api(`systems/${id}`, null, ctx.ctrl.signal);
        if (!ctx.alive()) return;
        this.sys = s;
        this.drawDetail(ctx);
        await Promise.all([this.loadCapacity(ctx), this.loadEvents(ctx, false)]);
      } catch (_) {
        /* shown as stale */
      }
    }, 800),
    on_snapshot(ctx, env) {
      if (env.system_id === id) this.reload(ctx);
    },
    on_event(ctx, env) {
      if (env.system_id === id) this.reload(ctx);
    },
  };
}

function eventsTable(events, withSystem) {
  const head = ["Time", "Level", "Category", withSystem ? "System" : null, "Message", "HTTP"].filter(Boolean).map((t) => h("th", { scope: "col" }, t));
  const rows = events.map((e) =>
    h(
      "tr",
      { "data-event-id": e.event_id, "data-level": e.level, "data-category": e.category, class: e.isNew ? "new" : null },
      h("td", { class: "nowrap" }, fmtTime(e.observed_at_ms)),
      h("td", null, badge(e.level)),
      h("td", null, (e.category || "").replace("_", " ")),
      withSystem ? h("td", null, h("a", { href: `#/systems/${e.system_id}` }, e.system_id)) : null,
      h("td", { class: "msg" }, e.message, e.details ? h("div", { class: "card-sub" }, e.details) : null),
      h("td", { class: "nowrap" }, e.http_status ? String(e.http_status) : "", e.endpoint ? h("div", { class: "card-sub" }, e.endpoint) : null),
    ),
  );
  return table(head, rows.length ? rows : [emptyRow(head.length, "No events match.")], { class: "events-table" });
}

// ---------------------------------------------------------------------------------------------
// Capacity report

const HISTORY_RANGES = [
  ["3m", "3 months", 91],
  ["6m", "6 months", 182],
  ["1y", "1 year", 365],
  ["2y", "2 years", 730],
];
const DEFAULT_KEYS = ["storage_type", "environment", "department"];

const capacityPage = {
  name: "capacity",
  title: "Capacity",
  async render(ctx) {
    const p = ctx.params;
    const state = { group_by: p.has("group_by") ? p.get("group_by") : "storage_type", range: p.get("range") || "3m" };
    this.state = state;
    const keys = new Set(DEFAULT_KEYS);
    try {
      const all = await apiAll("systems", { limit: 1000 }, ctx.ctrl.signal, 3);
      for (const s of all.items) for (const k of Object.keys(s.tags || {})) keys.add(k);
    } catch (e) {
      if (e.name === "AbortError") return;
    }
    if (!ctx.alive()) return;
    if (state.group_by) keys.add(state.group_by);
    const update = (k, v) => {
      state[k] = v;
      router.setParams(Object.entries(state));
      safe(ctx, this.load(ctx));
    };
    const custom = h("input", { type: "text", id: "f-custom", placeholder: "any tag key", pattern: "[A-Za-z0-9_.\\-]+", size: 14 });
    put(ctx.main, 
      h("h1", null, "Capacity report"),
      h(
        "div",
        { class: "toolbar" },
        select("Group by tag", "group_by", [["", "(whole fleet)"], ...[...keys].sort().map((k) => [k, k])], state.group_by, (v) => update("group_by", v)),
        h(
          "form",
          {
            class: "field",
            onsubmit: (e) => {
              e.preventDefault();
              const v = custom.value.trim();
              if (/^[A-Za-z0-9_.-]+$/.test(v)) {
                state.group_by = v;
                router.setParams(Object.entries(state));
                router.render();
              }
            },
          },
          h("label", { for: "f-custom", class: "field" }, "Other tag key", h("span", null, custom, " ", h("button", { type: "submit" }, "Group"))),
        ),
        select("History range", "range", HISTORY_RANGES.map((r) => [r[0], r[1]]), state.range, (v) => update("range", v)),
        h("span", { class: "spacer" }),
        h("div", { id: "csv-links", class: "toolbar" }),
      ),
      h("section", { class: "panel" }, h("h2", null, "Current totals"), h("div", { id: "cap-summary" }, h("p", { class: "loading" }, "Loading…"))),
      h("section", { class: "panel" }, h("h2", null, "Used capacity history"), h("div", { id: "cap-history" }, h("p", { class: "loading" }, "Loading…"))),
    );
    await this.load(ctx);
  },

  async load(ctx) {
    const st = this.state;
    const range = HISTORY_RANGES.find((r) => r[0] === st.range) || HISTORY_RANGES[0];
    const now = Date.now();
    const from = `${isoDay(now - range[2] * DAY)}T00:00:00Z`;
    const gb = st.group_by || null;
    const links = document.getElementById("csv-links");
    const icon = () => {
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("viewBox", "0 0 24 24");
      svg.setAttribute("aria-hidden", "true");
      svg.setAttribute("fill", "none");
      svg.setAttribute("stroke", "currentColor");
      svg.setAttribute("stroke-width", "2");
      const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
      path.setAttribute("d", "M12 3v12m0 0-5-5m5 5 5-5M4 19h16");
      svg.append(path);
      return svg;
    };
    put(links, 
      h("a", { class: "btn", id: "csv-current", href: tokenUrl("export/capacity.csv"), download: "capacity.csv" }, icon(), "Current capacity (CSV)"),
      h("a", { class: "btn", id: "csv-history", href: tokenUrl("export/capacity-history.csv", { group_by: gb, from }), download: "capacity-history.csv" }, icon(), "History (CSV)"),
    );
    const gen = (this.loadGen = (this.loadGen || 0) + 1);
    const [summary, history] = await Promise.all([api("capacity/summary", { group_by: gb }, ctx.ctrl.signal), api("capacity/history", { group_by: gb, from }, ctx.ctrl.signal)]);
    if (gen !== this.loadGen || !ctx.alive()) return;
    const row = (g, i) =>
      h(
        "tr",
        { "data-group": g.key ?? "" },
        h("td", null, i === null ? null : h("span", { class: `sw s${i % 8}` }), " ", g.label),
        h("td", { class: "num" }, String(g.systems)),
        h("td", { class: "num" }, fmtBytes(g.used_bytes)),
        h("td", { class: "num" }, fmtBytes(g.free_bytes)),
        h("td", { class: "num" }, fmtBytes(g.total_bytes)),
        h("td", null, capacityBar({ used_bytes: g.used_bytes, total_bytes: g.total_bytes, used_pct: g.used_pct })),
      );
    const colour = new Map((history.series || []).map((s, i) => [s.key ?? "", i]));
    const groups = gb ? summary.groups || [] : [];
    put(document.getElementById("cap-summary"), 
      table(
        [gb ? `${gb}` : "Fleet", "Systems", "Used", "Free", "Total", "Used %"].map((t, i) => h("th", { scope: "col", class: i > 0 && i < 5 ? "num" : null }, t)),
        groups.length ? groups.map((g) => row(g, colour.has(g.key ?? "") ? colour.get(g.key ?? "") : null)) : [row(summary.overall, gb ? null : 0)],
        { class: "summary-table", foot: groups.length ? h("tr", { "data-group": "__all" }, [...row({ ...summary.overall, label: "All systems" }, null).children]) : null },
      ),
    );
    const series = (history.series || []).map((s, i) => ({
      label: s.label,
      cls: `s${i % 8}`,
      points: (s.points || []).map((pt) => ({ x: dayMs(pt.day), y: pt.used_bytes, total: pt.total_bytes })),
    }));
    const chart = lineChart({ series, width: document.getElementById("cap-history").clientWidth, yFormat: fmtBytes, xMin: now - range[2] * DAY, xMax: now, ariaLabel: `Used capacity by ${gb || "fleet"} over ${range[1]}`, id: "history-chart" });
    put(document.getElementById("cap-history"), 
      h("div", { class: "chart-box" }, chart),
      h("ul", { class: "legend" }, series.map((s) => h("li", null, h("span", { class: `sw ${s.cls}` }), s.label))),
    );
  },

  refresh(ctx) {
    this.load(ctx).catch(() => {});
  },
};

// ---------------------------------------------------------------------------------------------
// Events (fleet-wide log)

const EVENTS_PAGE = 50;

const eventsPage = {
  name: "events",
  title: "Events",
  async render(ctx) {
    const p = ctx.params;
    const state = { level: p.get("level") || "", category: p.get("category") || "", system: p.get("system") || "" };
    this.state = state;
    this.pages = [];
    const update = (k, v) => {
      state[k] = v;
      router.setParams(Object.entries(state));
      this.pages = [];
      safe(ctx, this.load(ctx, null));
    };
    put(ctx.main, 
      h("h1", null, "Events"),
      h(
        "div",
        { class: "toolbar", role: "search" },
        select("Minimum level", "level", [["", "Any level"], ...LEVELS.map((l) => [l, l])], state.level, (v) => update("level", v)),
        select("Category", "category", [["", "Any category"], ...CATEGORIES.map((c) => [c, c.replace("_", " ")])], state.category, (v) => update("category", v)),
        searchBox("System id", "system", state.system, "fa-prod-01", (v) => update("system", v)),
      ),
      h("div", { id: "events-new" }),
      h("div", { id: "events-body" }, h("p", { class: "loading" }, "Loading events…")),
    );
    await this.load(ctx, null);
  },

  async load(ctx, cursor) {
    const st = this.state;
    const body = document.getElementById("events-body");
    if (st.system && !/^[a-z0-9_-]{1,64}$/.test(st.system)) {
      put(body, h("p", { class: "error-box" }, "A system id has only a-z, 0-9, _ and -."));
      return;
    }
    const gen = (this.loadGen = (this.loadGen || 0) + 1);
    const res = await api("events", { level: st.level, category: st.category, system: st.system, limit: EVENTS_PAGE, cursor }, ctx.ctrl.signal);
    if (gen !== this.loadGen || !ctx.alive()) return;
    this.items = res.items;
    this.cursor = cursor;
    this.next = res.next_cursor;
    this.fresh = 0;
    put(document.getElementById("events-new"), );
    this.draw(ctx);
  },

  draw(ctx) {
    const body = document.getElementById("events-body");
    const pageNo = this.pages.length + 1;
    put(body, 
      eventsTable(this.items, true),
      h(
        "div",
        { class: "more" },
        h("button", { type: "button", id: "events-newer", disabled: !this.pages.length, onclick: () => safe(ctx, this.load(ctx, this.pages.pop() ?? null)) }, "← Newer"),
        h("span", { class: "muted", id: "events-page" }, `Page ${pageNo}`),
        h(
          "button",
          {
            type: "button",
            id: "events-older",
            disabled: !this.next,
            onclick: () => {
              this.pages.push(this.cursor);
              safe(ctx, this.load(ctx, this.next));
            },
          },
          "Older →",
        ),
      ),
    );
  },

  refresh(ctx) {
    if (!this.pages.length) this.load(ctx, null).catch(() => {});
  },

  on_event(ctx, env) {
    const st = this.state;
    const b = env.body || {};
    if (st.system && env.system_id !== st.system) return;
    if (st.category && b.category !== st.category) return;
    if (st.level && LEVELS.indexOf(b.level) < LEVELS.indexOf(st.level)) return;
    if (this.pages.length) {
      this.fresh = (this.fresh || 0) + 1;
      put(document.getElementById("events-new"), 
        h("p", null, h("button", { type: "button", onclick: () => { this.pages = []; safe(ctx, this.load(ctx, null)); } }, `${this.fresh} new event${this.fresh === 1 ? "" : "s"} — show newest`)),
      );
      return;
    }
    const item = {
      event_id: env.event_id,
      system_id: env.system_id,
      observed_at_ms: env.observed_at,
      level: b.level,
      category: b.category,
      message: b.message,
      details: b.details,
      http_status: b.http_status,
      endpoint: b.endpoint,
      isNew: true,
    };
    if (this.items.some((e) => e.event_id === item.event_id)) return;
    this.items = [item, ...this.items].sort((a, b2) => b2.observed_at_ms - a.observed_at_ms).slice(0, EVENTS_PAGE);
    this.draw(ctx);
  },
};

const notFoundPage = {
  name: "not-found",
  title: "Not found",
  async render(ctx) {
    put(ctx.main, h("h1", null, "Page not found"), h("p", null, h("a", { href: "#/" }, "Go to the fleet overview")));
  },
};

// ---------------------------------------------------------------------------------------------
// Start

document.querySelector(".skip").addEventListener("click", (e) => {
  e.preventDefault();
  document.getElementById("main").focus();
});
document.getElementById("theme-toggle").addEventListener("click", () => setTheme(currentTheme() === "dark" ? "light" : "dark"));
{
  const btn = document.getElementById("theme-toggle");
  const t = currentTheme();
  btn.setAttribute("aria-pressed", String(t === "dark"));
  btn.setAttribute("aria-label", t === "dark" ? "Switch to light theme" : "Switch to dark theme");
}
window.addEventListener("hashchange", () => {
  router.render();
  const main = document.getElementById("main");
  if (document.activeElement && document.activeElement.closest && document.activeElement.closest(".nav")) main.focus({ preventScroll: true });
});
live.connect();
router.render();
