// The fleet overview (#/): every system as a card or a table row, grouped by vendor, with
// filters (vendor, status, cluster type, tag, text) and totals; snapshots from the live stream
// update the systems in place. Acknowledged alerts are shown but do not count (nor colour a
// card); disabled systems are shown as such and left out of the totals.
import { CLUSTER_TYPES, VENDORS, VENDOR_NAME, STATUSES } from "../enums.js";
import { fmtBytes } from "../format.js";
import { age, badge, capacityBar, clusterTypeBadge, h, put, searchBox, select, table, tagsOf } from "../dom.js";
import { apiAll } from "../api.js";
import { router, throttle } from "../router.js";

/** The open alerts that count: the unacknowledged ones (the array's count from older servers). */
function counted(s) {
  return s.unacknowledged_alerts ?? s.alert_count;
}

function statusLevel(s) {
  if (s.disabled) return "st-off";
  if (!s.status) return "";
  if (s.status !== "online") return "st-bad";
  if (s.hardware === "error" || s.cluster === "error") return "st-bad";
  if (s.hardware === "warning" || s.cluster === "warning" || (counted(s) || 0) > 0) return "st-warn";
  return "st-ok";
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
      h("span", { class: "st" }, s.disabled ? disabledBadge() : badge(s.status)),
    ),
    h(
      "dl",
      { class: "kv" },
      h("dt", null, "Hardware"),
      h("dd", { class: "hw" }, badge(s.hardware ?? "unknown")),
      h("dt", null, "Cluster"),
      h("dd", { class: "cl" }, badge(s.cluster ?? "unknown")),
      h("dt", null, "Cluster type"),
      h("dd", { class: "ct" }, clusterTypeBadge(s.cluster_type)),
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

function disabledBadge() {
  return h("span", { class: "badge b-none", "data-value": "disabled", title: "enabled = false in the inventory: not polled, not counted" }, "disabled");
}

function alertCount(s) {
  const n = counted(s);
  const acked = s.acknowledged_alerts || 0;
  const ackNote = acked ? h("span", { class: "muted acked", "data-acked": acked }, ` +${acked} acknowledged`) : null;
  if (n === null || n === undefined) return h("span", { class: "muted" }, "—");
  if (n === 0) return [h("span", { class: "muted", "data-count": 0 }, "0"), ackNote];
  return [h("a", { href: `#/alerts?system=${encodeURIComponent(s.id)}`, class: "badge b-warn", "data-count": n }, `${n} open`), ackNote];
}

function systemRow(s) {
  return h(
    "tr",
    { "data-system-id": s.id, class: statusLevel(s) },
    h("td", null, h("a", { href: `#/systems/${s.id}` }, s.name || s.id), h("div", { class: "card-sub" }, s.id)),
    h("td", { class: "st" }, s.disabled ? disabledBadge() : badge(s.status)),
    h("td", { class: "hw" }, badge(s.hardware ?? "unknown")),
    h("td", { class: "cl hide-sm" }, badge(s.cluster ?? "unknown")),
    h("td", { class: "ct hide-sm" }, clusterTypeBadge(s.cluster_type)),
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
  if (b.topology) {
    s.cluster_type = b.topology.cluster_type ?? s.cluster_type;
    s.management_url = b.topology.management_url ?? s.management_url;
  }
  const before = s.alert_count;
  s.alert_count = Array.isArray(b.alerts) ? b.alerts.length : s.alert_count;
  // Which of the alerts are acknowledged only the API knows: until its next answer, new or
  // cleared alerts move the unacknowledged count (fleetPage refetches after such a snapshot).
  if (s.unacknowledged_alerts !== undefined && s.unacknowledged_alerts !== null && before !== s.alert_count) {
    s.unacknowledged_alerts = Math.max(0, s.unacknowledged_alerts + (s.alert_count || 0) - (before || 0));
    s.countsMoved = true;
  }
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

export const fleetPage = {
  name: "fleet",
  title: "Fleet",
  systems: [],
  async render(ctx) {
    const p = ctx.params;
    const view = localStorage.getItem("sdash.view") === "table" ? "table" : "cards";
    const state = {
      vendor: p.get("vendor") || "",
      status: p.get("status") || "",
      cluster_type: p.get("cluster_type") || "",
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
        select("Cluster type", "cluster_type", [["", "Any cluster type"], ...CLUSTER_TYPES], state.cluster_type, (v) => update("cluster_type", v)),
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
    const params = { vendor: state.vendor, status: state.status, cluster_type: state.cluster_type, q: state.q, limit: 1000, sort: "name" };
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
                ["System", "Status", "Hardware", "Cluster", "Type", "Alerts", "Capacity", "Last poll"].map((t, i) =>
                  h("th", { scope: "col", class: i === 3 || i === 4 || i === 7 ? "hide-sm" : null }, t),
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
    // Disabled systems are shown, but left out of every total.
    const counting = systems.filter((s) => !s.disabled);
    const disabled = systems.length - counting.length;
    const online = counting.filter((s) => s.status === "online").length;
    const down = counting.filter((s) => s.status && s.status !== "online").length;
    const alerts = counting.reduce((n, s) => n + (counted(s) || 0), 0);
    let used = 0;
    let total = 0;
    for (const s of counting) {
      if (s.capacity && s.capacity.total_bytes) {
        used += s.capacity.used_bytes || 0;
        total += s.capacity.total_bytes;
      }
    }
    const tile = (k, v, id) => h("div", { class: "tile", id }, h("div", { class: "k" }, k), h("div", { class: "v" }, v));
    put(tiles, 
      tile("Systems shown", disabled ? `${systems.length} (${disabled} disabled)` : String(systems.length), "tile-systems"),
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
    if (s.countsMoved) {
      // The writer stores the new alerts; the API then knows which count.
      s.countsMoved = false;
      setTimeout(() => this.refetchSoon(ctx), 1500);
    }
    const st = this.state || {};
    if ((st.status && (s.status || "pending") !== st.status) || (st.vendor && s.vendor !== st.vendor) || (st.cluster_type && s.cluster_type !== st.cluster_type)) {
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

  // An alert was acknowledged (or taken back): the counts change. The fleet list is cached by
  // the API and reloaded after the writer's commit, so ask once more a little later.
  on_alert_updated(ctx) {
    this.refetchSoon(ctx);
    setTimeout(() => this.refetchSoon(ctx), 2500);
  },

  refetchSoon: throttle(function (ctx) {
    if (ctx.alive()) fleetPage.load(ctx, fleetPage.state);
  }, 1000),
};
