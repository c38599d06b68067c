// The deeper parts of a system's page (#17): topology and network, the link to the array's own
// web UI, capacity per pool (current bars and a history chart each) and performance charts.
// system.js places the sections and calls these when the system or a range changes.
import { DAY, fmtBytes, fmtCount, fmtMicros, fmtRate, fmtTime } from "../format.js";
import { age, capacityBar, clusterTypeBadge, h, put, table } from "../dom.js";
import { api } from "../api.js";
import { lineChart } from "../chart.js";

const HOUR = 3600000;
const TIER_NAMES = { raw: "raw samples", hourly: "hourly rollups", daily: "daily rollups" };

/** [id, label, span in ms] of the performance charts' range selector. */
export const PERF_RANGES = [
  ["1h", "1 hour", HOUR],
  ["6h", "6 hours", 6 * HOUR],
  ["24h", "24 hours", DAY],
  ["7d", "7 days", 7 * DAY],
  ["30d", "30 days", 30 * DAY],
  ["90d", "3 months", 91 * DAY],
  ["1y", "1 year", 365 * DAY],
];

const POOL_KINDS = { aggregate: "Aggregate", site: "Site", storage_pool: "Storage pool", active_tier: "Active tier", cloud_tier: "Cloud tier", space: "Space" };

/** The charts of the performance section: [id, title, [read metric, write metric], format, y ticks]. */
const PERF_CHARTS = [
  ["perf-iops", "IOPS", ["read_iops", "write_iops"], fmtCount, "decimal"],
  ["perf-latency", "Latency", ["read_latency_us", "write_latency_us"], fmtMicros, "decimal"],
  ["perf-bandwidth", "Bandwidth", ["read_bytes_per_s", "write_bytes_per_s"], fmtRate, null],
];
const METRICS = PERF_CHARTS.flatMap(([, title, names, fmt]) => names.map((m, i) => [m, `${i ? "Write" : "Read"} ${title.toLowerCase()}`, fmt]));

/**
 * The URL of the array's web UI when it is an http(s) URL (a stored value is data: never let it
 * become a javascript: link).
 */
export function webUiUrl(s) {
  const raw = s.management_url ?? (s.topology && s.topology.management_url);
  if (!raw) return null;
  try {
    const u = new URL(raw);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch (_) {
    return null;
  }
}

/** A link that opens the array's own web UI in a new tab, without giving it this page. */
export function webUiLink(s, attrs, text) {
  const href = webUiUrl(s);
  if (!href) return null;
  return h("a", { ...attrs, href, target: "_blank", rel: "noopener noreferrer", title: "Opens the array's own web UI in a new tab" }, text || href);
}

/** A vendor state word as a badge: good words green, bad ones red, the rest neutral. */
function stateBadge(state) {
  if (!state) return h("span", { class: "muted" }, "—");
  const w = String(state).toLowerCase();
  const good = ["up", "ok", "ready", "online", "healthy", "connected", "normal", "available", "enabled", "active", "true", "idle", "running", "in_sync", "insync"];
  const bad = ["down", "failed", "offline", "error", "critical", "degraded", "disconnected", "unreachable", "unhealthy", "false", "disabled", "broken", "partial"];
  const cls = good.includes(w) ? "b-ok" : bad.includes(w) ? "b-bad" : "b-none";
  return h("span", { class: `badge ${cls}`, "data-value": state }, state);
}

/** The Topology section: cluster type, sites, the nodes and the partners. */
export function drawTopology(box, s) {
  const t = s.topology;
  if (!t) {
    put(box, h("p", { class: "muted", id: "no-topology" }, "No topology reported by this array yet."));
    return;
  }
  const nodes = t.nodes || [];
  const partners = t.partners || [];
  const th = (names) => names.map((n) => h("th", { scope: "col" }, n));
  put(
    box,
    h(
      "dl",
      { class: "kv" },
      h("dt", null, "Cluster type"),
      h("dd", null, clusterTypeBadge(t.cluster_type ?? s.cluster_type, { id: "topo-cluster-type" })),
      h("dt", null, "Sites"),
      h("dd", { id: "topo-sites" }, t.site_count ?? "—"),
      h("dt", null, "Nodes"),
      h("dd", { id: "topo-node-count" }, String(nodes.length)),
    ),
    h("h3", null, "Nodes"),
    nodes.length
      ? table(
          th(["Name", "Model", "Serial", "State", "Version"]),
          nodes.map((n) =>
            h(
              "tr",
              { "data-node": n.name },
              h("td", { class: "n-name" }, n.name),
              h("td", { class: "n-model" }, n.model || "—"),
              h("td", { class: "n-serial" }, n.serial || "—"),
              h("td", { class: "n-state" }, stateBadge(n.state)),
              h("td", { class: "n-version" }, n.version || "—"),
            ),
          ),
          { class: "nodes-table" },
        )
      : h("p", { class: "muted" }, "No nodes reported."),
    h("h3", null, "Partners"),
    partners.length
      ? table(
          th(["Name", "Kind", "State"]),
          partners.map((p) => h("tr", { "data-partner": p.name, "data-kind": p.kind }, h("td", null, p.name), h("td", null, (p.kind || "—").replace(/[-_]/g, " ")), h("td", { class: "p-state" }, stateBadge(p.state)))),
          { class: "partners-table" },
        )
      : h("p", { class: "muted", id: "no-partners" }, "No replication or peer partners."),
  );
}

/** The Network section: the web UI, the management addresses and their DNS names. */
export function drawNetwork(box, s) {
  const t = s.topology || {};
  const addrs = t.management_addresses || [];
  const names = t.dns_names || [];
  const link = webUiLink(s, { class: "mgmt-url" });
  put(
    box,
    h(
      "dl",
      { class: "kv" },
      h("dt", null, "Web UI"),
      h("dd", null, link || h("span", { class: "muted" }, "not known")),
      h("dt", null, "Polled at"),
      h("dd", null, s.address ? h("code", null, s.address) : "—"),
      h("dt", null, "Management addresses"),
      h("dd", null, addrs.length ? h("ul", { class: "plain", id: "mgmt-addresses" }, addrs.map((a) => h("li", { "data-address": a }, h("code", null, a)))) : h("span", { class: "muted", id: "mgmt-addresses" }, "none reported")),
      h("dt", null, "DNS names"),
      h(
        "dd",
        null,
        names.length
          ? h("ul", { class: "plain", id: "dns-names" }, names.map((n) => h("li", { "data-dns": n }, h("code", null, n))))
          : h("span", { class: "muted", id: "dns-names", title: "forward-confirmed reverse lookups of the management addresses" }, s.topology ? "none found" : "not looked up yet"),
      ),
    ),
  );
}

/** The provisioned capacity as a line under the capacity bar, or null when not reported. */
export function provisionedLine(cap) {
  const p = cap && cap.provisioned_bytes;
  if (p === null || p === undefined) return null;
  const ratio = cap.total_bytes ? ` (${(p / cap.total_bytes).toFixed(1)} × the usable capacity)` : "";
  return h("p", { class: "provisioned" }, "Provisioned: ", h("strong", { id: "provisioned", "data-bytes": p }, fmtBytes(p)), ratio);
}

function poolTitle(p) {
  return `${POOL_KINDS[p.kind] || p.kind} ${p.name}`;
}

/**
 * The Pools section: per pool its current bar (from the system) and its history over the
 * capacity chart's range (`days`) from /pools, the latest poll appended like the capacity chart.
 */
export async function loadPools(ctx, box, s, days, rangeLabel) {
  const current = s.pools || [];
  const now = Date.now();
  const from = new Date(now - days * DAY).toISOString();
  let history = null;
  let failed = null;
  try {
    history = await api(`systems/${s.id}/pools`, { from }, ctx.ctrl.signal);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    failed = e;
  }
  if (!ctx.alive()) return;
  const byKey = new Map();
  for (const p of current) byKey.set(p.pool, { ...p, points: [] });
  for (const p of (history && history.pools) || []) {
    const entry = byKey.get(p.pool) || { pool: p.pool, kind: p.kind, name: p.name, points: [] };
    entry.points = p.points || [];
    byKey.set(p.pool, entry);
  }
  if (!byKey.size) {
    put(box, h("p", { class: "muted", id: "no-pools" }, "No pools reported by this array."), failed ? h("p", { class: "error-box" }, `Could not load the pool history: ${failed.message}`) : null);
    return;
  }
  const width = Math.max(300, Math.min(box.clientWidth || 600, 560));
  const cards = [...byKey.values()].map((p) => {
    const pts = p.points.map((pt) => ({ x: pt.at_ms, used: pt.used_bytes, total: pt.total_bytes }));
    const lastX = pts.length ? pts[pts.length - 1].x : -Infinity;
    const live = current.find((c) => c.pool === p.pool);
    if (live && s.status === "online" && s.last_poll_at_ms > lastX) pts.push({ x: s.last_poll_at_ms, used: live.used_bytes, total: live.total_bytes });
    const chart = lineChart({
      width,
      height: 180,
      series: [
        { label: "Used", cls: "s0", area: true, points: pts.map((pt) => ({ x: pt.x, y: pt.used })) },
        { label: "Total", cls: "total", aux: true, noDots: true, points: pts.map((pt) => ({ x: pt.x, y: pt.total })) },
      ],
      yFormat: fmtBytes,
      xMin: now - days * DAY,
      today: now,
      ariaLabel: `Used capacity of ${poolTitle(p)} over ${rangeLabel}`,
    });
    return h(
      "article",
      { class: "pool", "data-pool": p.pool, "data-used": live ? live.used_bytes : null, "data-total": live ? live.total_bytes : null, "data-history": p.points.length },
      h("h3", null, poolTitle(p)),
      live ? capacityBar(live) : h("p", { class: "muted" }, "Not in the latest poll."),
      h("div", { class: "chart-box" }, chart),
    );
  });
  put(
    box,
    h("div", { class: "pools" }, cards),
    failed
      ? h("p", { class: "error-box" }, `Could not load the pool history: ${failed.message}`)
      : h("p", { class: "muted tier", id: "pools-tier", "data-tier": history.tier || "" }, `History over ${rangeLabel}, read from ${TIER_NAMES[history.tier] || history.tier || "—"}.`),
  );
}

/**
 * The Performance section: the latest values and, over `range`, one chart each of IOPS,
 * latency and bandwidth (read and write). An array that reports none gets a note, not an error.
 */
export async function loadPerformance(ctx, box, s, range) {
  const now = Date.now();
  const span = range[2];
  let series = null;
  let failed = null;
  try {
    series = await api(`systems/${s.id}/performance`, { from: new Date(now - span).toISOString() }, ctx.ctrl.signal);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    failed = e;
  }
  if (!ctx.alive()) return;
  const points = ((series && series.points) || []).map((pt) => ({ ...pt, x: pt.at_ms }));
  const perf = s.performance;
  const lastX = points.length ? points[points.length - 1].x : -Infinity;
  if (perf && perf.observed_at_ms > lastX && perf.observed_at_ms >= now - span) points.push({ ...perf, x: perf.observed_at_ms });
  if (!perf && !points.length) {
    put(
      box,
      h("p", { class: "muted", id: "no-performance" }, "Performance is not reported by this array: its model or API version has no performance endpoint (or it was not polled yet)."),
      failed && failed.status !== 404 ? h("p", { class: "error-box" }, `Could not load the performance history: ${failed.message}`) : null,
    );
    return;
  }
  const now_ = perf
    ? h(
        "div",
        { class: "tiles perf-now", id: "perf-now" },
        METRICS.map(([m, label, fmt]) =>
          h("div", { class: "tile", "data-metric": m, "data-value": perf[m] ?? "" }, h("div", { class: "k" }, label), h("div", { class: "v" }, fmt(perf[m]))),
        ),
      )
    : h("p", { class: "muted", id: "no-performance-now" }, "The latest poll reported no performance; the history is below.");
  const width = Math.max(300, Math.min(((box.clientWidth || 900) - 32) / 3, 560));
  const charts = PERF_CHARTS.map(([cid, title, [r, w], fmt, ticks]) => {
    const line = (m, label, cls) => ({ label, cls, points: points.filter((pt) => pt[m] !== null && pt[m] !== undefined).map((pt) => ({ x: pt.x, y: pt[m] })) });
    return h(
      "figure",
      { class: "perf-chart" },
      h("figcaption", null, title),
      h(
        "div",
        { class: "chart-box" },
        lineChart({
          id: cid,
          width,
          height: 200,
          series: [line(r, "Read", "s0"), line(w, "Write", "s1")],
          yFormat: fmt,
          yTicks: ticks,
          xMin: now - span,
          xMax: now,
          minSpan: Math.min(span, HOUR),
          xFormat: fmtTime,
          emptyText: "No performance data in this range",
          ariaLabel: `${title} of ${s.name} over ${range[1]}`,
        }),
      ),
    );
  });
  put(
    box,
    now_,
    perf ? h("p", { class: "muted" }, "Latest: ", age(perf.observed_at_ms)) : null,
    h("div", { class: "perf-charts" }, charts),
    h("ul", { class: "legend" }, h("li", null, h("span", { class: "sw s0" }), "Read"), h("li", null, h("span", { class: "sw s1" }), "Write")),
    failed
      ? h("p", { class: "error-box" }, `Could not load the performance history: ${failed.message}`)
      : h("p", { class: "muted tier", id: "perf-tier", "data-tier": series.tier || "" }, `Read from ${TIER_NAMES[series.tier] || series.tier || "—"}${series.tier && series.tier !== "raw" ? " (averages)" : ""}.`),
  );
}
