// What an operator can do (#14): POST a command (asking for an operator token when the server
// wants one), the state of an alert (acknowledged, assignee, comments), the panel of one alert
// with its actions and comment thread (used by the alerts page and the system page), the
// previously used assignees for autocomplete, and a short message after each action.
//
// A command is answered 202 once it is on the bus; the writer applies it a moment later and the
// live stream's `alert_updated` event tells every open dashboard (this one too) to refetch.
import { HttpError, api, apiPost, auth, setToken } from "./api.js";
import { live } from "./live.js";
import { h, put } from "./dom.js";
import { fmtAge, fmtTime } from "./format.js";

// ---- Messages

let toastTimer = 0;

/** Shows a short message in the page's status line (`bad`: as an error). */
export function notify(text, bad = false) {
  const el = document.getElementById("toast");
  if (!el) return;
  clearTimeout(toastTimer);
  el.textContent = text;
  el.dataset.kind = bad ? "bad" : "ok";
  el.hidden = false;
  toastTimer = setTimeout(() => (el.hidden = true), bad ? 10000 : 5000);
}

// ---- The operator token

let asking = null;

/** Asks for an operator token in a modal dialog; resolves to the token, or null when cancelled. */
function askToken(message) {
  if (asking) return asking;
  asking = new Promise((resolve) => {
    const input = h("input", { type: "password", id: "operator-token", autocomplete: "off", required: true, "aria-label": "Operator token" });
    const dlg = h("dialog", { class: "token-dialog", id: "token-dialog", "aria-labelledby": "token-dialog-h" });
    const done = (value) => {
      if (dlg.open) dlg.close();
      dlg.remove();
      asking = null;
      resolve(value || null);
    };
    put(
      dlg,
      h("h2", { id: "token-dialog-h" }, "Operator token required"),
      h("p", { class: "muted", id: "token-dialog-reason" }, message),
      h("p", { class: "muted" }, "The token is kept in this browser tab only, until the tab is closed."),
      h(
        "form",
        {
          id: "operator-token-form",
          onsubmit: (e) => {
            e.preventDefault();
            done(input.value.trim());
          },
        },
        input,
        h("button", { type: "submit", id: "operator-token-use" }, "Use token"),
        h("button", { type: "button", onclick: () => done(null) }, "Cancel"),
      ),
    );
    dlg.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(null);
    });
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
  return asking;
}

/**
 * POSTs a command. Without a token, or with one that may only read, the server answers 401 or
 * 403: then the dashboard asks for an operator token (kept for the tab) and tries again. A
 * server with commands turned off says so, and nothing is asked.
 */
export async function command(path, body) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await apiPost(path, body);
    } catch (e) {
      const tokenProblem = e.status === 401 || (e.status === 403 && !/disabled/i.test(e.message));
      if (!tokenProblem || attempt >= 3) throw e;
      const reason =
        e.status === 403
          ? "This token may read but not act. Enter an operator token to change alerts or poll systems."
          : auth.token
            ? "The token was not accepted. Enter an operator token."
            : "Changing alerts and polling systems needs an operator token.";
      const token = await askToken(reason);
      if (!token) throw new HttpError(e.status, "no operator token was given");
      setToken(token);
      // The stream carries the token in its URL: reconnect with the new one.
      live.connect();
    }
  }
}

/** Runs an action from `button` (disabled meanwhile) and says how it went. */
export async function act(button, what, fn) {
  const buttons = button ? [button].flat() : [];
  for (const b of buttons) b.disabled = true;
  try {
    const r = await fn();
    notify(`${what}: sent.`);
    return r || {};
  } catch (e) {
    notify(`${what} failed: ${e.message}`, true);
    return null;
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

// ---- Assignees (autocomplete)

export const assignees = {
  names: [],
  loadedAt: 0,
  async load(force = false) {
    if (!force && Date.now() - this.loadedAt < 15000) return this.names;
    try {
      const r = await api("assignees");
      this.names = (r.items || []).map((x) => x.name);
      this.loadedAt = Date.now();
    } catch (_) {
      /* autocomplete is a help, not a need */
    }
    const list = datalist();
    put(list, this.names.map((n) => h("option", { value: n })));
    for (const el of document.querySelectorAll("[data-known-assignees]")) put(el, knownAssigneeItems());
    return this.names;
  },
};

/** The page's one <datalist> of assignee names, which every assignee input refers to. */
function datalist() {
  let el = document.getElementById("assignee-names");
  if (!el) {
    el = h("datalist", { id: "assignee-names" });
    document.body.append(el);
  }
  return el;
}

function knownAssigneeItems() {
  if (!assignees.names.length) return [h("li", { class: "muted" }, "No names yet.")];
  return assignees.names.map((n) =>
    h(
      "li",
      { "data-assignee-name": n },
      h("span", null, n),
      h(
        "button",
        {
          type: "button",
          class: "link-btn forget",
          "aria-label": `Remove ${n} from the suggestions`,
          title: "Remove from the suggestions (assignments stay)",
          onclick: async (e) => {
            const r = await act(e.currentTarget, `Removing ${n}`, () => command("assignees/forget", { assignee: n }));
            if (r) setTimeout(() => assignees.load(true), 800);
          },
        },
        "×",
      ),
    ),
  );
}

/** The suggestions with a remove button each, in a disclosure. */
export function knownAssignees() {
  const list = h("ul", { class: "known-assignees", "data-known-assignees": "" }, knownAssigneeItems());
  return h(
    "details",
    { class: "assignee-admin", ontoggle: (e) => e.currentTarget.open && assignees.load(true) },
    h("summary", null, "Suggested names"),
    list,
  );
}

/** An input for an assignee with the suggestions as autocomplete. */
export function assigneeInput(id, value) {
  datalist();
  assignees.load();
  return h("input", { type: "text", id, class: "assignee-input", list: "assignee-names", value: value || "", maxlength: 128, autocomplete: "off", placeholder: "name", "aria-label": "Assignee" });
}

// ---- Alert state

/** Acknowledged, assignee and comment count of an alert, as badges (empty when none). */
export function alertState(a) {
  return h(
    "span",
    { class: "alert-state" },
    a.acknowledged
      ? h("span", { class: "badge b-ack", "data-ack": "yes", title: a.acknowledged_at_ms ? `acknowledged ${fmtTime(a.acknowledged_at_ms)}` : null }, `acknowledged by ${a.acknowledged_by || "?"}`)
      : null,
    a.assignee ? h("span", { class: "tag assignee", "data-assignee": a.assignee }, `assigned to ${a.assignee}`) : null,
    a.comment_count ? h("span", { class: "muted comment-count", "data-comments": a.comment_count }, `${a.comment_count} comment${a.comment_count === 1 ? "" : "s"}`) : null,
  );
}

/** The alert's id in the command routes (`/alerts/{id}/...`). */
function route(a, what) {
  return `alerts/${encodeURIComponent(a.id)}/${what}`;
}

/** Comments being written, by alert id. */
const drafts = new Map();

/**
 * The panel of one alert: its state, acknowledge or take back, assign (with autocomplete) or
 * unassign, and its comment thread with a field to add one. `detail` is what GET /alerts/{id}
 * returned (with `comments`), or the list item until that arrives. `changed` runs after each
 * command was accepted (the live stream's `alert_updated` then brings the new state).
 */
export function alertPanel(detail, changed) {
  const a = detail;
  const open = !a.cleared_at_ms;
  const key = String(a.id);
  const ackBtn = h(
    "button",
    {
      type: "button",
      class: "ack-btn",
      "data-action": a.acknowledged ? "unacknowledge" : "acknowledge",
      disabled: !open && !a.acknowledged,
      onclick: async (e) => {
        const what = a.acknowledged ? "unacknowledge" : "acknowledge";
        const r = await act(e.currentTarget, a.acknowledged ? "Taking back the acknowledgement" : "Acknowledging", () => command(route(a, what), {}));
        if (r) changed();
      },
    },
    a.acknowledged ? "Unacknowledge" : "Acknowledge",
  );
  const input = assigneeInput(`assignee-${key}`, a.assignee);
  const assignForm = h(
    "form",
    {
      class: "assign-form",
      onsubmit: async (e) => {
        e.preventDefault();
        const name = input.value.trim();
        if (!name) return;
        const r = await act(e.currentTarget.querySelector("button[type=submit]"), `Assigning to ${name}`, () => command(route(a, "assign"), { assignee: name }));
        if (r) {
          changed();
          setTimeout(() => assignees.load(true), 800);
        }
      },
    },
    h("label", { for: `assignee-${key}`, class: "muted" }, "Assign to"),
    input,
    h("button", { type: "submit", class: "assign-btn" }, "Assign"),
    a.assignee
      ? h(
          "button",
          {
            type: "button",
            class: "unassign-btn",
            onclick: async (e) => {
              const r = await act(e.currentTarget, "Unassigning", () => command(route(a, "unassign"), {}));
              if (r) changed();
            },
          },
          "Unassign",
        )
      : null,
  );
  // A comment being written survives the redraws the live stream causes.
  const text = h("textarea", { id: `comment-${key}`, class: "comment-input", rows: 2, maxlength: 4000, placeholder: "Add a comment", "aria-label": "Comment", oninput: (e) => drafts.set(key, e.target.value) });
  text.value = drafts.get(key) || "";
  const commentForm = h(
    "form",
    {
      class: "comment-form",
      onsubmit: async (e) => {
        e.preventDefault();
        const body = text.value.trim();
        if (!body) return;
        const r = await act(e.currentTarget.querySelector("button[type=submit]"), "Adding the comment", () => command(route(a, "comment"), { text: body }));
        if (r) {
          text.value = "";
          drafts.delete(key);
          changed();
        }
      },
    },
    text,
    h("button", { type: "submit", class: "comment-btn" }, "Comment"),
  );
  const comments = detail.comments;
  return h(
    "div",
    { class: "alert-panel", "data-panel-for": key },
    h(
      "div",
      { class: "alert-panel-head" },
      alertState(a),
      a.acknowledged && a.acknowledged_at_ms ? h("span", { class: "muted" }, ` since ${fmtTime(a.acknowledged_at_ms)}`) : null,
      a.assignee && a.assigned_by ? h("span", { class: "muted" }, ` (assigned by ${a.assigned_by})`) : null,
      open ? null : h("span", { class: "badge b-none" }, "cleared"),
    ),
    h("div", { class: "alert-actions" }, ackBtn, assignForm, knownAssignees()),
    h(
      "section",
      { class: "comments", "aria-label": "Comments" },
      h("h3", null, "Comments"),
      comments === undefined
        ? h("p", { class: "loading" }, "Loading comments…")
        : comments.length
          ? h(
              "ol",
              { class: "comment-thread" },
              comments.map((c) =>
                h(
                  "li",
                  { class: "comment", "data-author": c.author },
                  h("div", { class: "comment-meta" }, h("strong", { class: "comment-author" }, c.author), " ", h("span", { class: "muted comment-at", title: fmtTime(c.at_ms) }, `${fmtTime(c.at_ms)} · ${fmtAge(c.at_ms)}`)),
                  h("div", { class: "comment-text" }, c.text),
                ),
              ),
            )
          : h("p", { class: "muted no-comments" }, "No comments yet."),
      commentForm,
    ),
  );
}

/**
 * The alert panels a page shows (by alert id), with their details fetched from GET
 * /alerts/{id}: kept across redraws so a list refreshed by the live stream keeps what is open.
 */
export class AlertPanels {
  constructor() {
    this.open = new Set();
    this.details = new Map();
  }

  isOpen(id) {
    return this.open.has(String(id));
  }

  toggle(id) {
    const k = String(id);
    if (this.open.has(k)) this.open.delete(k);
    else this.open.add(k);
    return this.open.has(k);
  }

  /** The panel for list item `a` (the fetched details when there are, newer state from `a`). */
  panel(a, changed) {
    const known = this.details.get(String(a.id));
    const detail = known ? { ...known, ...a, comments: known.comments } : { ...a, comments: undefined };
    const el = h("div", { class: "panel-slot" }, alertPanel(detail, changed));
    if (!known) this.fetch(a.id, el, changed);
    return el;
  }

  /** Fetches one alert's details and redraws its panel in `slot` (or in every shown slot). */
  async fetch(id, slot, changed) {
    const k = String(id);
    try {
      const d = await api(`alerts/${encodeURIComponent(k)}`);
      this.details.set(k, d);
      const slots = slot ? [slot] : [...document.querySelectorAll(`[data-panel-for="${CSS.escape(k)}"]`)].map((p) => p.parentNode);
      for (const s of slots) if (s && s.isConnected !== false) put(s, alertPanel({ ...d, comments: d.comments || [] }, changed));
    } catch (_) {
      /* the list shows the state; the panel stays as it is */
    }
  }

  /** Refetches every open panel (after an `alert_updated` of one of them, or a resync). */
  refreshOpen(changed) {
    for (const k of this.open) this.fetch(k, null, changed);
  }
}

/** Whether an `alert_updated` change (the envelope from the stream) is about list item `a`. */
export function changeIsAbout(env, a) {
  const b = (env && env.body) || {};
  const inst = (b.command && b.command.alert) || {};
  if (env.system_id !== a.system_id) return false;
  const alertId = inst.alert_id ?? (b.alert && b.alert.id);
  const opened = inst.opened_at ?? b.alert_opened_at;
  return alertId === a.alert_id && (!opened || !a.first_seen_ms || opened === a.first_seen_ms);
}
