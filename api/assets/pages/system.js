// One system (#/systems/<id>): its state, capacity chart and forecast, open alerts, components,
// recent events and status changes.
import { CATEGORIES, HEALTH_RANK, LEVELS, SEV_RANK, VENDOR_NAME } from "../enums.js";
import { DAY, dayMs, fmtBytes, fmtTime } from "../format.js";
import { age, badge, capacityBar, h, put, select, table, tagsOf } from "../dom.js";
import { api } from "../api.js";
import { router, safe, throttle } from "../router.js";
import { lineChart } from "../chart.js";
import { eventsTable } from "./events.js";

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
