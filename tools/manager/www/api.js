// api.js - the JSON API client of the sluice Manager pages.
//
// api(method, path, body) -> {ok, status, data}; never throws. Every
// request other than GET/HEAD carries the session's CSRF token in the
// X-CSRF-Token header (from /api/login or /api/session). A 401 on any
// call but login/session calls the handler set with onUnauthorized (the
// app then shows the login page).
//
// SECURITY: same-origin requests only (relative paths), cookies sent by
// the browser (the session cookie is HttpOnly; we never see it).
let csrf = '';
let unauthorized = null;

export function setCsrf(token) { csrf = typeof token === 'string' ? token : ''; }
export function onUnauthorized(fn) { unauthorized = fn; }

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const opts = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    return { ok: false, status: 0, data: { error: 'the manager did not answer (' + e.message + ')' } };
  }
  let data = {};
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = { error: `HTTP ${res.status} (not JSON)` }; }
  }
  if (data === null || typeof data !== 'object') data = { value: data };
  if (res.status === 401 && unauthorized && path !== '/api/login' && path !== '/api/session') {
    unauthorized();
  }
  return { ok: res.ok, status: res.status, data };
}

export function errText(r) {
  if (r.data && typeof r.data.error === 'string' && r.data.error) return r.data.error;
  if (r.status === 403) return 'not allowed for your role';
  return r.status ? `HTTP ${r.status}` : 'no answer';
}

// Query string from an object, leaving out empty values.
export function qs(obj) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) {
    if (v !== undefined && v !== null && String(v).trim() !== '') p.set(k, String(v).trim());
  }
  const q = p.toString();
  return q ? '?' + q : '';
}

export const enc = encodeURIComponent;
