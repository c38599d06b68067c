// One system (#/systems/<id>): its state, capacity chart and forecast, provisioned capacity, open
// alerts (each with its panel to acknowledge, assign and comment), performance charts, capacity
// per pool, topology and network (system_deep.js), components, recent events and status changes;
// "Poll now" asks the system's collector for a poll at once, and a link opens the array's own UI.
import { CATEGORIES, HEALTH_RANK, LEVELS, SEV_RANK, VENDOR_NAME } from "../enums.js";
import { DAY, dayMs, fmtBytes, fmtTime } from "../format.js";

const TIER_NAMES = { raw: "raw samples", hourly: "hourly rollups", daily: "daily rollups" };
import { age, badge, capacityBar, clusterTypeBadge, h, put, select, table, tagsOf } from "../dom.js";
import { api } from "../api.js";
import { router, safe, throttle } from "../router.js";
import { lineChart } from "../chart.js";
import { eventsTable } from "./events.js";
import { AlertPanels, alertState, changeIsAbout, command, notify } from "../actions.js";
import { PERF_RANGES, drawNetwork, drawTopology, loadPerformance, loadPools, provisionedLine, webUiLink } from "./system_deep.js";

const RANGES = [
  ["30d", "30 days", 30],
  ["90d", "3 months", 91],
  ["180d", "6 months", 182],
  ["1y", "1 year", 365],
  ["2y", "2 years", 730],
];

export function systemPage(id) {
  return {
    name: "system",
    title: id,
    async render(ctx) {
      const p = ctx.params;
      this.range = RANGES.find((r) => r[0] === p.get("range")) || RANGES[1];
      this.level = p.get("level") || "";
      this.category = p.get("category") || "";
      this.perfRange = PERF_RANGES.find((r) => r[0] === p.get("perf")) || PERF_RANGES[2];
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
      this.panels = new AlertPanels();
      this.ctx = ctx;
      document.title = `${s.name} · sdash`;
      const setParam = () => router.setParams([["range", this.range[0]], ["perf", this.perfRange[0]], ["level", this.level], ["category", this.category]]);
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
              safe(ctx, Promise.all([this.loadCapacity(ctx), this.loadPools(ctx)]));
            })),
            h("div", { id: "sys-capacity" }, h("p", { class: "loading" }, "Loading capacity…")),
          ),
          h("section", { class: "panel", "aria-labelledby": "info-h" }, h("h2", { id: "info-h" }, "System"), h("div", { id: "sys-info" })),
        ),
        h("section", { class: "panel", "aria-labelledby": "al-h" }, h("h2", { id: "al-h" }, "Open alerts"), h("div", { id: "sys-alerts" })),
        h(
          "section",
          { class: "panel", "aria-labelledby": "perf-h" },
          h("h2", { id: "perf-h" }, "Performance"),
          h("div", { class: "toolbar" }, select("Range", "perf", PERF_RANGES.map((r) => [r[0], r[1]]), this.perfRange[0], (v) => {
            this.perfRange = PERF_RANGES.find((r) => r[0] === v) || PERF_RANGES[2];
            setParam();
            safe(ctx, this.loadPerformance(ctx));
          })),
          h("div", { id: "sys-performance" }, h("p", { class: "loading" }, "Loading performance…")),
        ),
        h("section", { class: "panel", "aria-labelledby": "pools-h" }, h("h2", { id: "pools-h" }, "Capacity per pool"), h("div", { id: "sys-pools" }, h("p", { class: "loading" }, "Loading pools…"))),
        h(
          "div",
          { class: "grid2 even" },
          h("section", { class: "panel", "aria-labelledby": "topo-h" }, h("h2", { id: "topo-h" }, "Topology"), h("div", { id: "sys-topology" })),
          h("section", { class: "panel", "aria-labelledby": "net-h" }, h("h2", { id: "net-h" }, "Network"), h("div", { id: "sys-network" })),
        ),
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
      await this.loadAll(ctx);
    },

    /** Everything drawn from series of their own (after a new poll, or on first render). */
    loadAll(ctx) {
      return Promise.all([this.loadCapacity(ctx), this.loadPerformance(ctx), this.loadPools(ctx), this.loadEvents(ctx, false)]);
    },

    loadPerformance(ctx) {
      return loadPerformance(ctx, document.getElementById("sys-performance"), this.sys, this.perfRange);
    },

    loadPools(ctx) {
      return loadPools(ctx, document.getElementById("sys-pools"), this.sys, this.range[2], this.range[1]);
    },

    /** "Poll now": one extra poll by the system's collector; a 429 says when to try again. */
    pollNowButton() {
      const s = this.sys;
      const status = h("span", { id: "poll-now-status", class: "muted", role: "status" });
      const button = h(
        "button",
        {
          type: "button",
          id: "poll-now",
          disabled: s.disabled === true,
          title: s.disabled ? "This system is disabled in the inventory" : "Ask the collector to poll this system now",
          onclick: async (e) => {
            const b = e.currentTarget;
            b.disabled = true;
            status.textContent = "Asking the collector…";
            try {
              await command(`systems/${id}/poll-now`, {});
              this.pollRequestedAt = Date.now();
              status.dataset.state = "sent";
              status.textContent = "Poll requested: the result shows here in a moment.";
            } catch (err) {
              if (err.status === 429) {
                const wait = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : " Try again in a little while.";
                status.dataset.state = "too-soon";
                status.textContent = `This system was polled on request a moment ago.${wait}`;
              } else {
                status.dataset.state = "failed";
                status.textContent = "";
                notify(`Poll now failed: ${err.message}`, true);
              }
            } finally {
              b.disabled = s.disabled === true;
            }
          },
        },
        "Poll now",
      );
      return h("span", { class: "poll-now" }, button, " ", status);
    },

    drawDetail() {
      const s = this.sys;
      // The poll-now status line survives redraws (a snapshot redraws the head).
      const oldPoll = document.querySelector("#sys-head .poll-now");
      put(document.getElementById("sys-head"), 
        h(
          "div",
          { class: "sys-head" },
          h("h1", null, s.name),
          s.disabled ? h("span", { class: "badge b-none", id: "sys-disabled" }, "disabled") : null,
          h("span", { id: "sys-status" }, badge(s.status)),
          h("span", { id: "sys-hardware" }, badge(s.hardware ?? "unknown", "hardware")),
          h("span", { id: "sys-cluster" }, badge(s.cluster ?? "unknown", "cluster")),
          s.cluster_type ? h("span", { id: "sys-cluster-type" }, clusterTypeBadge(s.cluster_type)) : null,
          h("span", { class: "muted" }, "last poll ", age(s.last_poll_at_ms)),
          oldPoll || this.pollNowButton(),
          webUiLink(s, { id: "mgmt-link", class: "btn" }, "Open web UI ↗"),
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
          row("Provisioned", s.capacity && s.capacity.provisioned_bytes !== null && s.capacity.provisioned_bytes !== undefined ? fmtBytes(s.capacity.provisioned_bytes) : null),
        ),
        h("div", null, tagsOf(s)),
      );
      drawTopology(document.getElementById("sys-topology"), s);
      drawNetwork(document.getElementById("sys-network"), s);
      const alerts = s.open_alerts || [];
      const changed = () => {
        setTimeout(() => this.reloadDetail(this.ctx), 2000);
      };
      const rows = alerts
        .slice()
        .sort((a, b) => (SEV_RANK[b.severity] || 0) - (SEV_RANK[a.severity] || 0))
        .flatMap((a) => {
          const open = this.panels.isOpen(a.id);
          const row = h(
            "tr",
            { "data-severity": a.severity, "data-alert-id": a.id, "data-acknowledged": a.acknowledged ? "yes" : "no", class: a.acknowledged ? "acked" : null },
            h("td", null, badge(a.severity)),
            h("td", { class: "msg" }, a.title),
            h("td", null, a.component || "—"),
            h("td", { class: "nowrap" }, fmtTime(a.first_seen_ms)),
            h(
              "td",
              { class: "state" },
              alertState(a),
              a.id === undefined
                ? null
                : h(
                    "button",
                    {
                      type: "button",
                      class: "link-btn details-btn",
                      "aria-expanded": String(open),
                      onclick: () => {
                        this.panels.toggle(a.id);
                        this.drawDetail();
                      },
                    },
                    open ? "Close" : "Act / comment",
                  ),
            ),
          );
          if (!open) return [row];
          return [row, h("tr", { class: "detail-row", "data-detail-for": a.id }, h("td", { colspan: 5 }, this.panels.panel({ ...a, system_id: s.id }, changed)))];
        });
      const acked = alerts.filter((a) => a.acknowledged).length;
      put(document.getElementById("sys-alerts"), 
        alerts.length
          ? [
              acked ? h("p", { class: "muted", id: "acked-note" }, `${acked} of ${alerts.length} acknowledged: they do not count towards the system's health.`) : null,
              table(["Severity", "Title", "Component", "First seen", "State"].map((t) => h("th", { scope: "col" }, t)), rows),
            ]
          : h("p", { class: "muted", id: "no-alerts" }, "No open alerts."),
      );
      const rank = HEALTH_RANK;
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
      // The finest storage tier that holds the range (raw samples are kept only when capacity
      // moved, or every few hours, so a flat system has few of them); the latest poll is a
      // sample too, so the line reaches it.
      const [series0, forecast] = await Promise.all([
        api(`systems/${id}/capacity`, { from }, ctx.ctrl.signal),
        api(`systems/${id}/forecast`, { days: Math.min(90, days), horizon: Math.max(90, Math.min(365, days)) }, ctx.ctrl.signal).catch(() => null),
      ]);
      if (!ctx.alive()) return;
      const points = (series0.points || []).filter((pt) => pt.total_bytes !== null).map((pt) => ({ x: pt.at_ms, used: pt.used_bytes, total: pt.total_bytes }));
      const latest = this.sys;
      const lastX = points.length ? points[points.length - 1].x : -Infinity;
      if (latest.capacity && latest.status === "online" && latest.last_poll_at_ms > lastX && latest.last_poll_at_ms >= now - days * DAY) {
        points.push({ x: latest.last_poll_at_ms, used: latest.capacity.used_bytes, total: latest.capacity.total_bytes });
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
        provisionedLine(cap),
        fcText,
        h("div", { class: "chart-box" }, chart),
        h("p", { class: "muted tier", id: "capacity-tier", "data-tier": series0.tier || "" }, `Read from ${TIER_NAMES[series0.tier] || series0.tier || "—"}.`),
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
        await this.loadAll(ctx);
      } catch (_) {
        /* shown as stale */
      }
    }, 800),
    /** The system's state and alerts only (after an alert changed). */
    reloadDetail: throttle(async function (ctx) {
      if (!ctx || !ctx.alive()) return;
      try {
        const s = await api(`systems/${id}`, null, ctx.ctrl.signal);
        if (!ctx.alive()) return;
        this.sys = s;
        this.drawDetail(ctx);
      } catch (_) {
        /* shown as stale */
      }
    }, 250),
    on_snapshot(ctx, env) {
      if (env.system_id === id) this.reload(ctx);
    },
    on_alert_updated(ctx, env) {
      if (env.system_id !== id) return;
      this.reloadDetail(ctx);
      for (const a of (this.sys && this.sys.open_alerts) || []) {
        if (this.panels.isOpen(a.id) && changeIsAbout(env, { ...a, system_id: id })) this.panels.fetch(a.id, null, () => this.reloadDetail(ctx));
      }
    },
    on_event(ctx, env) {
      if (env.system_id === id) this.reload(ctx);
    },
  };
}
