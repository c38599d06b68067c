// The client of the JSON API (/api/v1): URLs, the bearer token, errors, paging, and the POSTs of
// operator commands (actions.js asks for an operator token when one is needed).

/**
 * What the rest of the app does when the API answers or not, and when it asks for a token (set
 * by app.js, so this module depends on nothing else).
 */
export const apiHooks = {
  reachable: (_ok) => {},
  unauthorized: () => {},
};

export const auth = { token: sessionStorage.getItem("sdash.token") || "" };

/** Keeps `token` for this browser tab only (sessionStorage), for reading and acting. */
export function setToken(token) {
  auth.token = token;
  try {
    sessionStorage.setItem("sdash.token", token);
  } catch (_) {
    /* storage disabled: kept in memory for this page */
  }
}

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function apiUrl(path, params) {
  const u = new URL(`/api/v1/${path}`, location.origin);
  if (params) {
    for (const [k, v] of Object.entries(params)) {
      if (v === null || v === undefined || v === "") continue;
      if (Array.isArray(v)) v.forEach((x) => u.searchParams.append(k, x));
      else u.searchParams.set(k, v);
    }
  }
  return u.pathname + u.search;
}

/**
 * A URL the browser opens by itself (EventSource, download links), which cannot carry an
 * Authorization header: the token goes in `access_token`, which the API accepts only on the live
 * stream and the CSV exports.
 */
export function tokenUrl(path, params) {
  return apiUrl(path, auth.token ? { ...params, access_token: auth.token } : params);
}

export async function api(path, params, signal) {
  const headers = { Accept: "application/json" };
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  let resp;
  try {
    resp = await fetch(apiUrl(path, params), { headers, signal, cache: "no-cache" });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    apiHooks.reachable(false);
    throw new HttpError(0, "the sdash API is not reachable");
  }
  apiHooks.reachable(true);
  if (resp.status === 401) {
    apiHooks.unauthorized();
    throw new HttpError(401, "a bearer token is required");
  }
  if (!resp.ok) {
    let msg = `${resp.status} ${resp.statusText}`;
    try {
      msg = (await resp.json()).error || msg;
    } catch (_) {
      /* not JSON */
    }
    throw new HttpError(resp.status, msg);
  }
  return resp.json();
}

/**
 * POSTs a JSON body (an operator command) and returns the JSON answer (202 {command_ids}).
 * Failures throw an HttpError with the server's message, and for 429 `retryAfter` (seconds).
 */
export async function apiPost(path, body) {
  const headers = { Accept: "application/json", "Content-Type": "application/json" };
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  let resp;
  try {
    resp = await fetch(apiUrl(path), { method: "POST", headers, body: JSON.stringify(body || {}), cache: "no-store" });
  } catch (_) {
    apiHooks.reachable(false);
    throw new HttpError(0, "the sdash API is not reachable");
  }
  apiHooks.reachable(true);
  let data = null;
  try {
    data = await resp.json();
  } catch (_) {
    /* not JSON */
  }
  if (!resp.ok) {
    const err = new HttpError(resp.status, (data && data.error) || `${resp.status} ${resp.statusText}`);
    const retry = Number(resp.headers.get("Retry-After"));
    err.retryAfter = retry > 0 ? retry : null;
    throw err;
  }
  return data || {};
}

/** Follows next_cursor up to `pages` pages and returns all items. */
export async function apiAll(path, params, signal, pages = 10) {
  let items = [];
  let cursor = null;
  for (let i = 0; i < pages; i++) {
    const page = await api(path, { ...params, cursor }, signal);
    items = items.concat(page.items || []);
    cursor = page.next_cursor;
    if (!cursor) return { items, complete: true };
  }
  return { items, complete: false };
}
