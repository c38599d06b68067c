// The alerts page (#/alerts): open or cleared alerts of the fleet, filtered and sorted.
import { SEVERITIES, SEV_RANK, VENDORS, VENDOR_NAME } from "../enums.js";
import { fmtAge, fmtTime } from "../format.js";
import { badge, emptyRow, h, put, searchBox, select, table } from "../dom.js";
import { apiAll } from "../api.js";
import { router, safe, throttle } from "../router.js";

const ALERT_COLS = [
  ["severity", "Severity", (a) => SEV_RANK[a.severity] || 0],
  ["system", "System", (a) => (a.system_name || a.system_id).toLowerCase()],
  ["title", "Title", (a) => (a.title || "").toLowerCase()],
  ["component", "Component", (a) => (a.component || "").toLowerCase()],
  ["first_seen", "First seen", (a) => a.first_seen_ms || 0],
];

export const alertsPage = {
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
