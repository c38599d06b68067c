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
