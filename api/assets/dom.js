// Shared DOM helpers: building elements (never from HTML strings) and the widgets every page
// uses (badges, capacity bars, ages, filter fields, tables).
import { fmtAge, fmtBytes, fmtPct, fmtTime } from "./format.js";
import { CLUSTER_TYPE_NAME } from "./enums.js";

/** Builds an element: h("a", {href: "#/", class: "x", onclick: fn}, "text", child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

/** Replaces the children of `el` (null and false are skipped, unlike replaceChildren). */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function healthClass(v) {
  return { ok: "b-ok", online: "b-ok", warning: "b-warn", error: "b-bad", critical: "b-bad", unreachable: "b-bad", auth_failed: "b-bad", info: "b-info" }[v] || "b-none";
}

export function badge(value, label) {
  const text = value === null || value === undefined ? "pending" : String(value).replace("_", " ");
  return h("span", { class: `badge ${healthClass(value)}`, dataset: { value: value ?? "pending" } }, label ? `${label}: ${text}` : text);
}

/** A system's cluster type as a label (a dash while its topology is not known). */
export function clusterTypeBadge(type, attrs) {
  if (!type) return h("span", { class: "muted", "data-value": "", ...attrs }, "—");
  return h("span", { class: "badge b-info ctype", "data-value": type, ...attrs }, CLUSTER_TYPE_NAME[type] || type);
}

export function capacityBar(cap) {
  if (!cap || !cap.total_bytes) return h("div", { class: "cap" }, h("span", { class: "cap-text" }, "capacity unknown"));
  const pct = cap.used_pct ?? (cap.used_bytes / cap.total_bytes) * 100;
  const level = pct > 90 ? "crit" : pct > 75 ? "warn" : "ok";
  const fill = h("span");
  fill.style.width = `${Math.min(100, Math.max(0, pct)).toFixed(1)}%`;
  return h(
    "div",
    { class: "cap" },
    h("div", { class: `bar ${level}`, role: "img", "aria-label": `${pct.toFixed(1)} % used`, dataset: { level } }, fill),
    h("span", { class: "cap-text" }, `${fmtBytes(cap.used_bytes)} of ${fmtBytes(cap.total_bytes)} · ${fmtPct(pct)}`),
  );
}

export function age(ms) {
  return h("span", { class: "nowrap", "data-age": ms || "", title: ms ? fmtTime(ms) : "" }, fmtAge(ms));
}

/** The tags of a system as "key: value" chips. */
export function tagsOf(s) {
  return Object.entries(s.tags || {}).map(([k, v]) => h("span", { class: "tag" }, `${k}: ${v}`));
}

export function select(label, name, options, value, onchange) {
  const sel = h(
    "select",
    { name, id: `f-${name}`, onchange: (e) => onchange(e.target.value) },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
  );
  return h("label", { class: "field", for: `f-${name}` }, label, sel);
}

export function searchBox(label, name, value, placeholder, oninput) {
  let timer = 0;
  let last = (value || "").trim();
  const fire = (v) => {
    clearTimeout(timer);
    if (v === last) return;
    last = v;
    oninput(v);
  };
  const input = h("input", {
    type: "search",
    name,
    id: `f-${name}`,
    value: value || "",
    placeholder,
    autocomplete: "off",
    oninput: (e) => {
      clearTimeout(timer);
      const v = e.target.value.trim();
      timer = setTimeout(() => fire(v), 250);
    },
    // Clearing the field (its x button, or a script) fires only "change".
    onchange: (e) => fire(e.target.value.trim()),
    onkeydown: (e) => {
      if (e.key === "Enter") fire(e.target.value.trim());
    },
  });
  return h("label", { class: "field", for: `f-${name}` }, label, input);
}

export function table(head, rows, opts = {}) {
  const t = h("table", { class: opts.class || "" }, h("thead", null, h("tr", null, head)), h("tbody", null, rows));
  if (opts.foot) t.append(h("tfoot", null, opts.foot));
  return h("div", { class: "table-wrap" }, t);
}

export function emptyRow(cols, text) {
  return h("tr", null, h("td", { colspan: cols, class: "empty" }, text));
}
