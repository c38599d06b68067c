// The capacity report (#/capacity): current totals grouped by one or two tags, with subtotals and
// a forecast per group, and the capacity history (bytes or %, used and total lines, daily or
// weekly), with CSV and XLSX exports.
import { DAY, dayMs, fmtBytes, fmtPct } from "../format.js";
import { capacityBar, h, put, select, table } from "../dom.js";
import { api, apiAll, tokenUrl } from "../api.js";
import { router, safe } from "../router.js";
import { lineChart } from "../chart.js";

// [id, label, days (null: from the first day with data)]
const HISTORY_RANGES = [
  ["3m", "3 months", 91],
  ["6m", "6 months", 182],
  ["1y", "1 year", 365],
  ["2y", "2 years", 730],
  ["all", "All", null],
];
// [id, label, interval, week_value]
const INTERVALS = [
  ["day", "Daily", "day", null],
  ["week", "Weekly (last day)", "week", "last"],
  ["week-avg", "Weekly (average)", "week", "avg"],
];
const MODES = [
  ["bytes", "Bytes"],
  ["pct", "Percent used"],
];
const TIER_TEXT = { raw: "raw samples", hourly: "hourly rollups", daily: "daily rollups" };
const DEFAULT_KEYS = ["storage_type", "environment", "department"];

function downloadIcon() {
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
}

/** "in 12 d (2027-01-05)", "now", or "—" for a forecast threshold. */
function reach(days, date) {
  if (days === null || days === undefined) return "—";
  return days === 0 ? "now" : `${days} d (${date})`;
}

export const capacityPage = {
  name: "capacity",
  title: "Capacity",
  async render(ctx) {
    const p = ctx.params;
    const state = {
      group_by: p.has("group_by") ? p.get("group_by") : "storage_type",
      subgroup_by: p.get("subgroup_by") || "",
      range: p.get("range") || "3m",
      interval: p.get("interval") || "day",
      mode: p.get("mode") || "bytes",
    };
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
    if (state.subgroup_by) keys.add(state.subgroup_by);
    const update = (k, v) => {
      state[k] = v;
      router.setParams(Object.entries(state));
      const sub = document.getElementById("f-subgroup_by");
      if (sub) sub.disabled = !state.group_by;
      safe(ctx, this.load(ctx));
    };
    const sorted = [...keys].sort();
    const custom = h("input", { type: "text", id: "f-custom", placeholder: "any tag key", pattern: "[A-Za-z0-9_.\\-]+", size: 14 });
    put(ctx.main,
      h("h1", null, "Capacity report"),
      h(
        "div",
        { class: "toolbar" },
        select("Group by tag", "group_by", [["", "(whole fleet)"], ...sorted.map((k) => [k, k])], state.group_by, (v) => update("group_by", v)),
        select("Then by tag", "subgroup_by", [["", "(none)"], ...sorted.map((k) => [k, k])], state.subgroup_by, (v) => update("subgroup_by", v)),
        h(
          "form",
          {
            class: "field",
            onsubmit: (e) => {
              e.preventDefault();
              const v = custom.value.trim();
              if (/^[A-Za-z0-9_.-]+$/.test(v)) {
                state.group_by = v;
                state.subgroup_by = "";
                router.setParams(Object.entries(state));
                router.render();
              }
            },
          },
          h("label", { for: "f-custom", class: "field" }, "Other tag key", h("span", null, custom, " ", h("button", { type: "submit" }, "Group"))),
        ),
        select("History range", "range", HISTORY_RANGES.map((r) => [r[0], r[1]]), state.range, (v) => update("range", v)),
        select("Points", "interval", INTERVALS.map((r) => [r[0], r[1]]), state.interval, (v) => update("interval", v)),
        select("Show", "mode", MODES, state.mode, (v) => update("mode", v)),
        h("span", { class: "spacer" }),
        h("div", { id: "csv-links", class: "toolbar" }),
      ),
      h("section", { class: "panel" }, h("h2", null, "Current totals"), h("div", { id: "cap-summary" }, h("p", { class: "loading" }, "Loading…"))),
      h("section", { class: "panel" }, h("h2", null, "Capacity history"), h("div", { id: "cap-history" }, h("p", { class: "loading" }, "Loading…"))),
    );
    const sub = document.getElementById("f-subgroup_by");
    if (sub) sub.disabled = !state.group_by;
    await this.load(ctx);
  },

  async load(ctx) {
    const st = this.state;
    const range = HISTORY_RANGES.find((r) => r[0] === st.range) || HISTORY_RANGES[0];
    const interval = INTERVALS.find((r) => r[0] === st.interval) || INTERVALS[0];
    const pct = st.mode === "pct";
    const now = Date.now();
    const gb = st.group_by || null;
    const sgb = gb && st.subgroup_by && st.subgroup_by !== gb ? st.subgroup_by : null;
    const span = range[2] === null ? { range: "all" } : { from: new Date(now - range[2] * DAY).toISOString().slice(0, 10) + "T00:00:00Z" };
    const grouping = { group_by: gb, subgroup_by: sgb };
    const histParams = { ...grouping, ...span, interval: interval[2] === "day" ? null : interval[2], week_value: interval[3] };
    const link = (id, path, params, file, text) => h("a", { class: "btn", id, href: tokenUrl(path, params), download: file }, downloadIcon(), text);
    put(document.getElementById("csv-links"),
      link("csv-current", "export/capacity.csv", null, "capacity.csv", "Current capacity (CSV)"),
      link("xlsx-current", "export/capacity.xlsx", grouping, "capacity.xlsx", "Report (XLSX)"),
      link("csv-history", "export/capacity-history.csv", histParams, "capacity-history.csv", "History (CSV)"),
      link("xlsx-history", "export/capacity-history.xlsx", histParams, "capacity-history.xlsx", "History (XLSX)"),
    );
    const gen = (this.loadGen = (this.loadGen || 0) + 1);
    const [summary, history] = await Promise.all([api("capacity/summary", grouping, ctx.ctrl.signal), api("capacity/history", histParams, ctx.ctrl.signal)]);
    if (gen !== this.loadGen || !ctx.alive()) return;
    this.drawSummary(summary, history, gb, sgb);
    this.drawHistory(history, range, interval, pct, gb, now);
  },

  drawSummary(summary, history, gb, sgb) {
    const colour = new Map((history.series || []).map((s, i) => [`${s.key ?? ""}\u0000${s.subkey ?? ""}`, i]));
    const row = (g, attrs, swatch, label) => {
      const f = g.forecast || {};
      return h(
        "tr",
        attrs,
        h("td", null, swatch === null ? null : h("span", { class: `sw s${swatch % 8}` }), " ", label ?? g.label),
        h("td", { class: "num" }, String(g.systems)),
        h("td", { class: "num" }, fmtBytes(g.used_bytes)),
        h("td", { class: "num" }, fmtBytes(g.free_bytes)),
        h("td", { class: "num" }, fmtBytes(g.total_bytes)),
        h("td", null, capacityBar({ used_bytes: g.used_bytes, total_bytes: g.total_bytes, used_pct: g.used_pct })),
        h("td", { class: "nowrap", "data-trend": f.trend || "" }, (f.trend || "—").replace("_", " ")),
        h("td", { class: "nowrap fc-80" }, reach(f.days_to_80_pct, f.date_80_pct)),
        h("td", { class: "nowrap fc-90" }, reach(f.days_to_90_pct, f.date_90_pct)),
        h("td", { class: "nowrap fc-100" }, reach(f.days_to_100_pct, f.date_100_pct)),
      );
    };
    const groups = gb ? summary.groups || [] : [];
    const key = (g) => `${g.key ?? ""}\u0000${g.subkey ?? ""}`;
    const groupRow = (g) => row(g, { "data-group": g.key ?? "", "data-subgroup": sgb ? g.subkey ?? "" : null }, colour.has(key(g)) ? colour.get(key(g)) : null);
    let rows;
    if (!groups.length) {
      rows = [row(summary.overall, { "data-group": "" }, gb ? null : 0)];
    } else if (sgb) {
      // Each first-level value: its groups, then its subtotal.
      rows = (summary.subtotals || []).flatMap((s) => [
        ...groups.filter((g) => (g.key ?? null) === (s.key ?? null)).map(groupRow),
        row(s, { class: "subtotal", "data-subtotal": s.key ?? "" }, null, h("strong", null, `${s.label} subtotal`)),
      ]);
    } else {
      rows = groups.map(groupRow);
    }
    const head = [sgb ? `${gb} / ${sgb}` : gb || "Fleet", "Systems", "Used", "Free", "Total", "Used %", "Trend", "80 % in", "90 % in", "Full in"];
    put(document.getElementById("cap-summary"),
      table(
        head.map((t, i) => h("th", { scope: "col", class: i > 0 && i < 5 ? "num" : null }, t)),
        rows,
        { class: "summary-table", foot: groups.length ? row(summary.overall, { "data-group": "__all" }, null, h("strong", null, "All systems")) : null },
      ),
      h("p", { class: "muted" }, "Forecast: a least-squares line through each group's summed daily used capacity (last 90 days); days until it reaches 80 %, 90 % and 100 % of the group's total."),
    );
  },

  drawHistory(history, range, interval, pct, gb, now) {
    const box = document.getElementById("cap-history");
    const ptsOf = (s, f) => (s.points || []).map((pt) => ({ x: pt.hour_ms ?? dayMs(pt.day), y: f(pt) })).filter((p) => p.y !== null && p.y !== undefined);
    const list = gb ? history.series || [] : [history.total && history.total.points && history.total.points.length ? history.total : (history.series || [])[0]].filter(Boolean);
    const series = [];
    list.forEach((s, i) => {
      const label = gb ? s.label : "All systems";
      if (pct) {
        series.push({ label, cls: `s${i % 8}`, points: ptsOf(s, (pt) => pt.used_pct) });
      } else {
        series.push({ label, cls: `s${i % 8}`, points: ptsOf(s, (pt) => pt.used_bytes) });
        series.push({ label: `${label} total`, cls: `s${i % 8}`, dash: true, noDots: true, aux: true, points: ptsOf(s, (pt) => pt.total_bytes) });
      }
    });
    const from = history.from_ms;
    const chart = lineChart({
      series,
      width: box.clientWidth,
      yFormat: pct ? (v) => `${Math.round(v)} %` : fmtBytes,
      yMax: pct ? 100 : undefined,
      yTicks: pct ? "decimal" : undefined,
      markers: pct ? [{ y: 90, label: "90 %", cls: "limit" }] : [],
      xMin: range[2] === null ? from : now - range[2] * DAY,
      xMax: now,
      ariaLabel: `${pct ? "Used %" : "Used and total capacity"} by ${gb || "fleet"} over ${range[1]}`,
      id: "history-chart",
    });
    const tier = history.tier || "daily";
    const days = Math.max(1, Math.round((history.to_ms - history.from_ms) / DAY));
    put(box,
      h("p", { class: "muted", id: "history-tier", "data-tier": tier, "data-interval": history.interval || "day" },
        `From ${TIER_TEXT[tier] || tier} · ${days} days · `,
        history.interval === "week" ? `one point per week (${history.week_value === "avg" ? "average of its days" : "its last day"})` : "one point per day",
        pct ? " · used % of each group's total" : " · solid: used, dashed: total"),
      h("div", { class: "chart-box" }, chart),
      h("ul", { class: "legend" }, series.filter((s) => !s.aux).map((s) => h("li", null, h("span", { class: `sw ${s.cls}` }), s.label)), pct ? null : h("li", null, h("span", { class: "sw dash" }), "Total")),
      history.total && gb && history.total.points && history.total.points.length
        ? h("p", { class: "muted", id: "history-total" }, `All systems, last point: ${fmtBytes(history.total.points[history.total.points.length - 1].used_bytes)} used of ${fmtBytes(history.total.points[history.total.points.length - 1].total_bytes)} (${fmtPct(history.total.points[history.total.points.length - 1].used_pct)})`)
        : null,
    );
  },

  refresh(ctx) {
    this.load(ctx).catch(() => {});
  },
};
