// Formatting of bytes, percentages, times and ages for display.

export const DAY = 86400000;

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** Bytes in binary units with the unit shown: 1.5 TiB. */
export function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(Number(n))) return "—";
  let v = Number(n);
  let i = 0;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = i === 0 ? 0 : Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0;
  return `${v.toFixed(digits)} ${UNITS[i]}`;
}

export function fmtPct(p) {
  return p === null || p === undefined ? "—" : `${Number(p).toFixed(1)} %`;
}

export function fmtAge(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400 * 2) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function pad(n) {
  return String(n).padStart(2, "0");
}

export function fmtTime(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function dayMs(day) {
  return Date.parse(`${day}T00:00:00Z`);
}

export function isoDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

/** An operation rate: 950, 12.3 k, 1.25 M (IOPS). */
export function fmtCount(n) {
  if (n === null || n === undefined || !Number.isFinite(Number(n))) return "—";
  const v = Math.abs(Number(n));
  const [div, unit] = v >= 1e9 ? [1e9, " G"] : v >= 1e6 ? [1e6, " M"] : v >= 1e4 ? [1e3, " k"] : [1, ""];
  const x = Number(n) / div;
  const digits = div === 1 ? (v < 10 && v % 1 ? 1 : 0) : Math.abs(x) < 10 ? 2 : Math.abs(x) < 100 ? 1 : 0;
  return `${x.toFixed(digits)}${unit}`;
}

/** A latency given in microseconds: 310 µs, 1.25 ms, 2.10 s. */
export function fmtMicros(us) {
  if (us === null || us === undefined || !Number.isFinite(Number(us))) return "—";
  const v = Number(us);
  if (Math.abs(v) < 1000) return `${v < 10 && v % 1 ? v.toFixed(1) : Math.round(v)} µs`;
  if (Math.abs(v) < 1e6) return `${(v / 1000).toFixed(v < 1e4 ? 2 : 1)} ms`;
  return `${(v / 1e6).toFixed(2)} s`;
}

/** Bytes per second in binary units: 1.61 GiB/s. */
export function fmtRate(n) {
  const b = fmtBytes(n);
  return b === "—" ? b : `${b}/s`;
}
