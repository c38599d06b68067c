// The live stream (Server-Sent Events from /api/v1/stream), its watchdog, and the marker that
// data may be stale.
import { auth, tokenUrl } from "./api.js";
import { fmtTime } from "./format.js";

export const live = {
  es: null,
  open: false,
  api: true,
  lastMessage: 0,
  sawPing: false,
  // The server's ping interval (from the `hello` event); 15 s until it says otherwise.
  pingMs: 15000,
  retryMs: 1000,
  retryTimer: 0,
  listeners: new Set(),

  connect() {
    clearTimeout(this.retryTimer);
    if (this.es) this.es.close();
    this.es = null;
    this.open = false;
    // EventSource cannot send an Authorization header: the token goes in the URL.
    const es = new EventSource(tokenUrl("stream"));
    this.es = es;
    const seen = () => {
      this.lastMessage = Date.now();
      if (!this.open) {
        const wasDown = this.everOpen;
        this.open = true;
        this.everOpen = true;
        this.retryMs = 1000;
        this.update();
        if (wasDown) this.emit("resync", null);
      }
    };
    es.addEventListener("open", seen);
    es.addEventListener("hello", (e) => {
      try {
        const ms = Number(JSON.parse(e.data).ping_ms);
        if (ms > 0) this.pingMs = ms;
      } catch (_) {
        /* an older server: keep the default */
      }
      seen();
    });
    es.addEventListener("ping", () => {
      this.sawPing = true;
      seen();
    });
    // `alert_updated`: an operator command changed an alert (acknowledged, assigned, commented),
    // from this dashboard or another one.
    for (const kind of ["snapshot", "event", "system", "alert_updated"]) {
      es.addEventListener(kind, (e) => {
        seen();
        let data;
        try {
          data = JSON.parse(e.data);
        } catch (_) {
          return;
        }
        this.emit(kind, data);
      });
    }
    es.addEventListener("error", () => {
      if (this.es !== es) return;
      this.open = false;
      this.update();
      probe();
      if (es.readyState === EventSource.CLOSED) {
        // The server answered with an error (e.g. 503 while NATS is down): retry with backoff.
        es.close();
        this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 30000);
      }
    });
  },

  apiReachable(ok) {
    if (ok === this.api) return;
    this.api = ok;
    this.update();
    if (ok) {
      if (!this.open) this.connect();
      this.emit("resync", null);
    }
  },

  emit(kind, data) {
    for (const fn of this.listeners) {
      try {
        fn(kind, data);
      } catch (e) {
        console.warn("live listener failed", e);
      }
    }
  },

  update() {
    const ok = this.api && this.open;
    const el = document.getElementById("live");
    const text = document.getElementById("live-text");
    const stale = document.getElementById("stale");
    const detail = document.getElementById("stale-detail");
    if (!el) return;
    el.dataset.state = ok ? "live" : this.everOpen || !this.api ? "down" : "connecting";
    text.textContent = ok ? "Live" : this.api ? "Reconnecting…" : "Offline";
    const showStale = !ok && (this.everOpen || !this.api || this.failedOnce);
    stale.hidden = !showStale;
    if (showStale) {
      const since = this.lastMessage ? `last update ${fmtTime(this.lastMessage)}; ` : "";
      detail.textContent = this.api
        ? `${since}the live stream is not connected, retrying (the page refreshes every 30 s meanwhile).`
        : `${since}the sdash API does not answer, retrying.`;
    }
    document.documentElement.dataset.live = showStale ? "stale" : "live";
  },
};

// A watchdog, every 10 s. While the stream is open, its `ping` events (every pingMs) prove the
// server and the connection alive; a stream silent for 3 pings is reconnected. Without fresh
// pings the API is probed (/api/v1/status), so a dead server shows as stale; without an open
// stream the current page refreshes every 30 s.
let lastPoll = Date.now();

/** Asks the API whether it answers; marks the page stale when it does not. */
async function probe() {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), 5000);
  try {
    const headers = auth.token ? { Authorization: `Bearer ${auth.token}` } : {};
    const r = await fetch("/api/v1/status", { cache: "no-store", signal: ctrl.signal, headers });
    live.apiReachable(r.status > 0);
  } catch (_) {
    live.apiReachable(false);
  } finally {
    clearTimeout(timer);
  }
}

setInterval(async () => {
  const fresh = live.open && live.sawPing && Date.now() - live.lastMessage < 2 * live.pingMs;
  if (!fresh) await probe();
  if (live.es && live.open && live.sawPing && Date.now() - live.lastMessage > 3 * live.pingMs) {
    live.open = false;
    live.connect();
  }
  if (!live.open && live.es && live.es.readyState !== EventSource.OPEN) live.failedOnce = true;
  live.update();
  if ((!live.open || !live.api) && Date.now() - lastPoll > 30000) {
    lastPoll = Date.now();
    if (live.api) live.emit("resync", null);
  }
  if (live.open) lastPoll = Date.now();
}, 10000);
