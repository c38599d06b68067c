// The fleet-wide event log (#/events), paged by cursor; new events from the live stream appear
// on the first page. Also the events table that the system page shows.
import { CATEGORIES, LEVELS } from "../enums.js";
import { fmtTime } from "../format.js";
import { badge, emptyRow, h, put, searchBox, select, table } from "../dom.js";
import { api } from "../api.js";
import { router, safe } from "../router.js";

export function eventsTable(events, withSystem) {
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

const EVENTS_PAGE = 50;

export const eventsPage = {
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
