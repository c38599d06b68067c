// The alerts page (#/alerts): open or cleared alerts of the fleet, filtered and sorted; each
// alert opens a panel to acknowledge, assign and comment it, and selected alerts take the same
// actions in bulk. Changes made anywhere arrive live (`alert_updated`).
import { SEVERITIES, SEV_RANK, VENDORS, VENDOR_NAME } from "../enums.js";
import { fmtAge, fmtTime } from "../format.js";
import { badge, emptyRow, h, put, searchBox, select, table } from "../dom.js";
import { apiAll } from "../api.js";
import { router, safe, throttle } from "../router.js";
import { AlertPanels, act, alertState, assigneeInput, changeIsAbout, command } from "../actions.js";

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
      acknowledged: ["true", "false"].includes(p.get("acknowledged")) ? p.get("acknowledged") : "",
      q: p.get("q") || "",
      sort: p.get("sort") || "severity",
      dir: p.get("dir") === "asc" ? "asc" : "desc",
    };
    this.state = state;
    this.selected = new Set();
    this.panels = new AlertPanels();
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
        select("Acknowledged", "acknowledged", [["", "Any"], ["false", "Not acknowledged"], ["true", "Acknowledged"]], state.acknowledged, (v) => update("acknowledged", v)),
        searchBox("Filter text", "q", state.q, "system, title, component", (v) => update("q", v, false)),
        state.system ? h("span", { class: "tag" }, `system: ${state.system} `, h("a", { href: "#/alerts" }, "×")) : null,
      ),
      this.bulkBar(ctx),
      h("div", { id: "alerts-body" }, h("p", { class: "loading" }, "Loading alerts…")),
    );
    await this.load(ctx);
  },

  /** The bulk actions over the selected alerts (disabled while none is selected). */
  bulkBar(ctx) {
    const send = async (button, what, kind, extra = {}) => {
      const ids = [...this.selected].map(Number);
      if (!ids.length) return null;
      const r = await act(button, `${what} (${ids.length} alert${ids.length === 1 ? "" : "s"})`, () => command(`alerts/bulk/${kind}`, { alerts: ids, ...extra }));
      if (r) this.changed(ctx);
      return r;
    };
    const assignee = assigneeInput("bulk-assignee", "");
    const comment = h("input", { type: "text", id: "bulk-comment", maxlength: 4000, placeholder: "comment", "aria-label": "Comment for the selected alerts" });
    const btn = (id, label, fn) => h("button", { type: "button", id, class: "bulk-btn", onclick: (e) => fn(e.currentTarget) }, label);
    return h(
      "div",
      { class: "bulk toolbar", id: "bulk", role: "group", "aria-label": "Actions on the selected alerts" },
      h("span", { id: "bulk-count", class: "muted" }, "0 selected"),
      btn("bulk-ack", "Acknowledge", (b) => send(b, "Acknowledging", "acknowledge")),
      btn("bulk-unack", "Unacknowledge", (b) => send(b, "Taking back acknowledgements", "unacknowledge")),
      h(
        "form",
        {
          class: "inline-form",
          onsubmit: (e) => {
            e.preventDefault();
            const name = assignee.value.trim();
            if (name) send(e.currentTarget.querySelector("button"), `Assigning to ${name}`, "assign", { assignee: name });
          },
        },
        assignee,
        h("button", { type: "submit", id: "bulk-assign", class: "bulk-btn" }, "Assign"),
      ),
      btn("bulk-unassign", "Unassign", (b) => send(b, "Unassigning", "unassign")),
      h(
        "form",
        {
          class: "inline-form",
          onsubmit: async (e) => {
            e.preventDefault();
            const text = comment.value.trim();
            if (!text) return;
            if (await send(e.currentTarget.querySelector("button"), "Commenting", "comment", { text })) comment.value = "";
          },
        },
        comment,
        h("button", { type: "submit", id: "bulk-comment-btn", class: "bulk-btn" }, "Comment"),
      ),
      btn("bulk-clear", "Clear selection", () => {
        this.selected.clear();
        this.draw(ctx);
      }),
    );
  },

  /** Marks the bulk bar with the number of selected alerts. */
  drawBulk() {
    const n = this.selected.size;
    const count = document.getElementById("bulk-count");
    if (count) count.textContent = `${n} selected`;
    for (const b of document.querySelectorAll("#bulk .bulk-btn")) b.disabled = n === 0;
  },

  /** After a command was accepted: the live stream brings the change; refetch anyway in case it is down. */
  changed(ctx) {
    setTimeout(() => {
      if (ctx.alive() && !this.liveSeen) this.reloadSoon(ctx);
    }, 2000);
    this.liveSeen = false;
  },

  async load(ctx) {
    const st = this.state;
    const gen = (this.loadGen = (this.loadGen || 0) + 1);
    const res = await apiAll("alerts", { state: st.state, severity: st.severity, vendor: st.vendor, system: st.system, acknowledged: st.acknowledged, limit: 1000 }, ctx.ctrl.signal, 5);
    if (gen !== this.loadGen || !ctx.alive()) return;
    this.alerts = res.items;
    // Selections and open panels of alerts no longer listed are dropped.
    const ids = new Set(res.items.map((a) => String(a.id)));
    for (const k of [...this.selected]) if (!ids.has(k)) this.selected.delete(k);
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
    const shownIds = rows.map((a) => String(a.id));
    const allSelected = shownIds.length > 0 && shownIds.every((k) => this.selected.has(k));
    const selectAll = h("input", {
      type: "checkbox",
      id: "select-all",
      "aria-label": "Select every alert shown",
      checked: allSelected,
      onchange: (e) => {
        for (const k of shownIds) {
          if (e.target.checked) this.selected.add(k);
          else this.selected.delete(k);
        }
        this.draw(ctx);
      },
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
    head.unshift(h("th", { scope: "col", class: "sel" }, selectAll));
    if (st.state !== "open") head.push(h("th", { scope: "col" }, "Cleared"));
    head.push(h("th", { scope: "col" }, "State"));
    const cols = head.length;
    const changed = () => this.changed(ctx);
    const tr = rows.flatMap((a) => {
      const k = String(a.id);
      const open = this.panels.isOpen(k);
      const row = h(
        "tr",
        { "data-alert-id": a.id, "data-system": a.system_id, "data-severity": a.severity, "data-acknowledged": a.acknowledged ? "yes" : "no", class: a.acknowledged ? "acked" : null },
        h(
          "td",
          { class: "sel" },
          h("input", {
            type: "checkbox",
            class: "select-alert",
            "aria-label": `Select ${a.title}`,
            checked: this.selected.has(k),
            onchange: (e) => {
              if (e.target.checked) this.selected.add(k);
              else this.selected.delete(k);
              const all = document.getElementById("select-all");
              if (all) all.checked = shownIds.every((x) => this.selected.has(x));
              this.drawBulk();
            },
          }),
        ),
        h("td", null, badge(a.severity), a.vendor_severity && a.vendor_severity !== a.severity ? h("div", { class: "card-sub" }, a.vendor_severity) : null),
        h("td", null, h("a", { href: `#/systems/${a.system_id}` }, a.system_name || a.system_id), h("div", { class: "card-sub" }, VENDOR_NAME[a.vendor] || a.vendor || "")),
        h("td", { class: "msg" }, a.title),
        h("td", null, a.component || h("span", { class: "muted" }, "—")),
        h("td", { class: "nowrap" }, fmtTime(a.first_seen_ms), h("div", { class: "card-sub" }, fmtAge(a.first_seen_ms))),
        st.state !== "open" ? h("td", { class: "nowrap" }, a.cleared_at_ms ? fmtTime(a.cleared_at_ms) : h("span", { class: "badge b-warn" }, "open")) : null,
        h(
          "td",
          { class: "state" },
          alertState(a),
          h(
            "button",
            {
              type: "button",
              class: "link-btn details-btn",
              "aria-expanded": String(open),
              onclick: () => {
                this.panels.toggle(k);
                this.draw(ctx);
              },
            },
            open ? "Close" : "Act / comment",
          ),
        ),
      );
      if (!open) return [row];
      return [row, h("tr", { class: "detail-row", "data-detail-for": a.id }, h("td", { colspan: cols }, this.panels.panel(a, changed)))];
    });
    put(body, 
      h("p", { class: "muted", id: "alerts-count" }, `${rows.length} ${st.state === "open" ? "open " : st.state === "cleared" ? "cleared " : ""}alert${rows.length === 1 ? "" : "s"}${this.complete ? "" : " (first 5000 shown)"}`),
      table(head, tr.length ? tr : [emptyRow(head.length, "No alerts match.")], { class: "alerts-table" }),
    );
    this.drawBulk();
  },

  refresh(ctx) {
    this.load(ctx).catch(() => {});
    if (this.panels) this.panels.refreshOpen(() => this.changed(ctx));
  },
  on_alert_updated(ctx, env) {
    this.liveSeen = true;
    this.reloadUpdated(ctx);
    // The open panels of that alert refetch their thread.
    for (const a of this.alerts || []) {
      if (this.panels.isOpen(a.id) && changeIsAbout(env, a)) this.panels.fetch(a.id, null, () => this.changed(ctx));
    }
  },
  reloadUpdated: throttle((ctx) => {
    if (ctx.alive()) alertsPage.load(ctx).catch(() => {});
  }, 250),
  on_snapshot(ctx, env) {
    const b = env.body || {};
    const st = this.state;
    // The writer derives alerts from online snapshots only; skip what the filters hide and
    // snapshots whose alerts are the ones already shown.
    if (b.status !== "online" || !this.alerts) return;
    if ((st.system && env.system_id !== st.system) || (st.vendor && b.vendor !== st.vendor)) return;
    // (With the acknowledged filter the snapshot's alerts are not the ones shown: reload.)
    if (st.state === "open" && this.complete && !st.acknowledged) {
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
