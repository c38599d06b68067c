// A small SVG line chart for time series (bytes, rates, latencies): no dependencies, themed by
// CSS classes.

const NS = "http://www.w3.org/2000/svg";
const M = { left: 76, right: 18, top: 14, bottom: 30 };
const DAY = 86400000;
const MINUTE = 60000;
// Steps of time-of-day ticks for spans under two days.
const CLOCK_STEPS = [5, 10, 15, 30, 60, 120, 180, 360, 720].map((m) => m * MINUTE);
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function el(tag, attrs, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/** Tick values from 0 to at least `max`, at a round step in binary units (0, 2 TiB, 4 TiB, ...). */
function yTicks(max) {
  if (!(max > 0)) return { ticks: [0, 1], top: 1 };
  let unit = 1;
  while (max / unit >= 1024) unit *= 1024;
  const scaled = max / unit;
  const raw = scaled / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) * unit;
  const top = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
  return { ticks, top };
}

/** Ticks at a round decimal step (1, 2, 2.5, 5 × 10^n) from 0 to `max` (exactly `max` when `exact`). */
function decimalTicks(max, exact) {
  if (!(max > 0)) return { ticks: [0, 1], top: 1 };
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const top = exact ? max : Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(Math.round(v * 1000) / 1000);
  return { ticks, top };
}

function pad2(n) {
  return String(n).padStart(2, "0");
}

/** "14:30" in the browser's time zone, like the page's other times. */
function clock(t) {
  const d = new Date(t);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

function xTicks(min, max, most) {
  const span = max - min;
  const out = [];
  if (span < 2 * DAY) {
    // Round local times: align on the time zone's offset (constant enough within two days).
    const step = CLOCK_STEPS.find((s) => span / s <= most) || CLOCK_STEPS[CLOCK_STEPS.length - 1];
    const off = new Date(min).getTimezoneOffset() * MINUTE;
    for (let t = Math.ceil((min - off) / step) * step + off; t <= max; t += step) out.push([t, clock(t)]);
    return out;
  }
  if (span <= 62 * DAY) {
    const step = Math.max(1, Math.ceil(span / DAY / most)) * DAY;
    let t = Math.ceil(min / DAY) * DAY;
    for (; t <= max; t += step) {
      const d = new Date(t);
      out.push([t, `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`]);
    }
    return out;
  }
  const d = new Date(min);
  let y = d.getUTCFullYear();
  let m = d.getUTCMonth() + 1;
  const months = [];
  for (;;) {
    if (m > 11) {
      m = 0;
      y++;
    }
    const t = Date.UTC(y, m, 1);
    if (t > max) break;
    months.push([t, m, y]);
    m++;
  }
  const every = Math.max(1, Math.ceil(months.length / most));
  months.forEach(([t, mo, yr], i) => {
    if (i % every === 0) out.push([t, mo === 0 || i === 0 ? `${MONTHS[mo]} ${yr}` : MONTHS[mo]]);
  });
  return out;
}

/**
 * lineChart({series: [{label, cls, points: [{x: ms, y: bytes}], area, noDots, dash, aux}], yFormat,
 *            markers: [{y, label, cls}], xMin, xMax, yMax, yTicks, today, ariaLabel, id, width,
 *            height, minSpan, xFormat, emptyText}) -> <svg>
 * `width` is the width the chart will be shown at (CSS pixels), so its text keeps its size;
 * `height` its height in the same pixels (280). The x axis spans at least `minSpan` ms (a day),
 * with dates, or times of day under two days; `xFormat` names a point's x in its tooltip (its
 * UTC day). Each series' group carries its newest value in data-last.
 * `dash` draws a series dashed; `aux` series (e.g. the total beside a used line) are drawn but
 * not counted in the svg's data-series (which counts the main lines with points; data-aux counts
 * the others). `yMax` sets the top of the axis (e.g. 100 for percentages); `yTicks: "decimal"`
 * picks round decimal steps instead of binary units.
 */
export function lineChart(opts) {
  const W = Math.round(Math.max(300, Math.min(1600, opts.width || 800)));
  const H = Math.round(Math.max(120, Math.min(600, opts.height || 280)));
  const minSpan = Number.isFinite(opts.minSpan) && opts.minSpan > 0 ? opts.minSpan : DAY;
  const xFmt = opts.xFormat || ((x) => new Date(x).toISOString().slice(0, 10));
  const series = (opts.series || []).map((s) => ({ ...s, points: (s.points || []).filter((p) => Number.isFinite(p.x) && p.y !== null && p.y !== undefined) }));
  const fmt = opts.yFormat || String;
  const all = series.flatMap((s) => s.points);
  const svg = el("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.ariaLabel || "chart", id: opts.id });
  svg.append(el("title", null, opts.ariaLabel || "chart"));
  const dataPoints = series.filter((s) => !s.noDots).reduce((n, s) => n + s.points.length, 0);
  svg.dataset.points = String(dataPoints);
  svg.dataset.series = String(series.filter((s) => s.points.length && !s.aux).length);
  svg.dataset.aux = String(series.filter((s) => s.points.length && s.aux).length);
  if (!all.length) {
    svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty-text" }, opts.emptyText || "No capacity data in this range yet"));
    return svg;
  }
  let xmin = Math.min(...all.map((p) => p.x));
  let xmax = Math.max(...all.map((p) => p.x));
  if (Number.isFinite(opts.xMin)) xmin = Math.min(xmin, opts.xMin);
  if (Number.isFinite(opts.xMax)) xmax = Math.max(xmax, opts.xMax);
  if (Number.isFinite(opts.today)) xmax = Math.max(xmax, opts.today);
  if (xmax - xmin < minSpan) {
    const pad = (minSpan - (xmax - xmin)) / 2;
    xmin -= pad;
    xmax += pad;
  }
  const markers = opts.markers || [];
  const ymaxData = Math.max(...all.map((p) => p.y), ...markers.map((m) => m.y));
  const { ticks, top } = Number.isFinite(opts.yMax) && opts.yMax >= ymaxData ? decimalTicks(opts.yMax, true) : opts.yTicks === "decimal" ? decimalTicks(ymaxData * 1.04, false) : yTicks(ymaxData * 1.04);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x) => M.left + ((x - xmin) / (xmax - xmin)) * pw;
  const sy = (y) => M.top + ph - (y / top) * ph;
  const r = (v) => Math.round(v * 10) / 10;

  const grid = el("g", { class: "grid" });
  for (const t of ticks) {
    grid.append(el("line", { class: "gridline", x1: M.left, x2: W - M.right, y1: r(sy(t)), y2: r(sy(t)) }));
    grid.append(el("text", { x: M.left - 8, y: r(sy(t)) + 4, "text-anchor": "end" }, fmt(t)));
  }
  for (const [t, label] of xTicks(xmin, xmax, Math.max(3, Math.floor(W / 110)))) {
    grid.append(el("line", { class: "axis", x1: r(sx(t)), x2: r(sx(t)), y1: M.top + ph, y2: M.top + ph + 5 }));
    grid.append(el("text", { x: r(sx(t)), y: H - 8, "text-anchor": "middle" }, label));
  }
  grid.append(el("line", { class: "axis", x1: M.left, x2: W - M.right, y1: M.top + ph, y2: M.top + ph }));
  svg.append(grid);

  for (const m of markers) {
    if (!(m.y <= top)) continue;
    svg.append(el("line", { class: m.cls || "limit", x1: M.left, x2: W - M.right, y1: r(sy(m.y)), y2: r(sy(m.y)) }));
    svg.append(el("text", { class: `${m.cls || "limit"}-label`, x: W - M.right - 4, y: r(sy(m.y)) - 4, "text-anchor": "end" }, m.label));
  }
  if (Number.isFinite(opts.today) && opts.today > xmin && opts.today < xmax) {
    const x = r(sx(opts.today));
    svg.append(el("line", { class: "today", x1: x, x2: x, y1: M.top, y2: M.top + ph }));
    svg.append(el("text", { x: x + 4, y: M.top + 10 }, "today"));
  }

  series.forEach((s) => {
    const pts = s.points.slice().sort((a, b) => a.x - b.x);
    if (!pts.length) return;
    const g = el("g", { class: "series-group", "data-label": s.label, "data-points": pts.length, "data-last": pts[pts.length - 1].y, "data-aux": s.aux ? "true" : null });
    const d = pts.map((p, i) => `${i ? "L" : "M"}${r(sx(p.x))},${r(sy(p.y))}`).join(" ");
    if (s.area && pts.length > 1) {
      const base = r(sy(0));
      g.append(el("path", { class: `area ${s.cls}`, d: `${d} L${r(sx(pts[pts.length - 1].x))},${base} L${r(sx(pts[0].x))},${base} Z` }));
    }
    g.append(el("path", { class: `series ${s.cls}`, d, "stroke-dasharray": s.dash ? "6 4" : null }));
    if (!s.noDots && pts.length <= 400) {
      const rad = pts.length > 120 ? 1.6 : 2.6;
      for (const p of pts) {
        g.append(el("circle", { class: `pt ${s.cls}`, cx: r(sx(p.x)), cy: r(sy(p.y)), r: rad }, el("title", null, `${s.label} ${xFmt(p.x)}: ${fmt(p.y)}`)));
      }
    }
    svg.append(g);
  });
  return svg;
}
