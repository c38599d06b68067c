// sdash dashboard: a small single-page app over the read-only JSON API (/api/v1). No third-party
// code; every DOM node is built with createElement and text nodes; charts are SVG drawn here.
// This module starts the app: it maps routes to pages, connects the live stream to the page
// shown, asks for a token when the API wants one, and wires the theme toggle.
import { h, put } from "./dom.js";
import { fmtAge } from "./format.js";
import { apiHooks, setToken } from "./api.js";
import { live } from "./live.js";
import { router } from "./router.js";
import { fleetPage } from "./pages/fleet.js";
import { alertsPage } from "./pages/alerts.js";
import { systemPage } from "./pages/system.js";
import { capacityPage } from "./pages/capacity.js";
import { eventsPage } from "./pages/events.js";

const notFoundPage = {
  name: "not-found",
  title: "Not found",
  async render(ctx) {
    put(ctx.main, h("h1", null, "Page not found"), h("p", null, h("a", { href: "#/" }, "Go to the fleet overview")));
  },
};

router.resolve = (path) => {
  let m;
  if (path === "/" || path === "/fleet") return { page: fleetPage, nav: "fleet" };
  if (path === "/alerts") return { page: alertsPage, nav: "alerts" };
  if (path === "/capacity") return { page: capacityPage, nav: "capacity" };
  if (path === "/events") return { page: eventsPage, nav: "events" };
  if ((m = path.match(/^\/systems\/([a-z0-9_-]{1,64})$/))) return { page: systemPage(m[1]), nav: "fleet" };
  return { page: notFoundPage, nav: undefined };
};

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
            setToken(input.value.trim());
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

apiHooks.reachable = (ok) => live.apiReachable(ok);
apiHooks.unauthorized = showTokenDialog;

// Live-stream messages go to the page shown: `resync` to its refresh, the others to on_<kind>.
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

// Ages ("12 s ago") tick without re-rendering.
setInterval(() => {
  for (const el of document.querySelectorAll("[data-age]")) {
    const ms = Number(el.dataset.age);
    if (ms) el.textContent = fmtAge(ms);
  }
}, 5000);

// The theme toggle (theme.js applied the remembered theme before the first paint).

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

// Start.

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
