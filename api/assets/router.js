// The hash router (#/path?query, filters live in the query so a URL can be shared) and what
// pages share to load and reload safely.
import { h } from "./dom.js";

export const router = {
  page: null,
  gen: 0,
  /** path -> { page, nav }: the page to show and the navigation link to mark (set by app.js). */
  resolve: null,

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
    const { page, nav } = this.resolve(path);
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

export function showError(ctx, e) {
  if (e && e.name === "AbortError") return;
  if (!ctx.alive() || (e && e.status === 401)) return;
  console.warn(e);
  const box = h("div", { class: "error-box", role: "alert" }, `Could not load this page: ${e && e.message ? e.message : e}`);
  ctx.main.prepend(box);
  const loading = ctx.main.querySelector(".loading");
  if (loading) loading.remove();
}

/** Runs a page's reload from an event handler; failures show on the page. */
export function safe(ctx, promise) {
  promise.catch((e) => showError(ctx, e));
}

/** Calls `fn` once, `ms` after the first of a burst of calls (the later ones merge into it). */
export function throttle(fn, ms) {
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
