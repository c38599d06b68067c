// The capacity report (#/capacity): current totals and used-capacity history grouped by a tag,
// with CSV exports.
import { DAY, dayMs, fmtBytes, isoDay } from "../format.js";
import { capacityBar, h, put, select, table } from "../dom.js";
import { api, apiAll, tokenUrl } from "../api.js";
import { router, safe } from "../router.js";
import { lineChart } from "../chart.js";

const HISTORY_RANGES = [
  ["3m", "3 months", 91],
  ["6m", "6 months", 182],
  ["1y", "1 year", 365],
  ["2y", "2 years", 730],
];
const DEFAULT_KEYS = ["storage_type", "environment", "department"];

export const capacityPage = {
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
