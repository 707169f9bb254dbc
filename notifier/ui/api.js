// api.js: the console's one way to the notifier's /v1/ API. The session cookie goes
// with every call (same origin only); a call that changes something carries the
// session's CSRF token, kept for the tab in sessionStorage (docs/console.md).

const CSRF_KEY = 'dealpush.csrf';

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

let onUnauthorized = () => {};

// Called with no argument when a call answers 401: the console shows the sign-in.
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export function setCsrf(token) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

// body: undefined (none), a string (sent as text, e.g. a file of codes) or a value
// sent as JSON.
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const text = typeof body === 'string';
  if (body !== undefined) headers['Content-Type'] = text ? 'text/plain' : 'application/json';
  if (method !== 'GET' && method !== 'HEAD') {
    const csrf = sessionStorage.getItem(CSRF_KEY);
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  const resp = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    body: body === undefined ? undefined : text ? body : JSON.stringify(body),
  });
  let data = null;
  const answer = await resp.text();
  if (answer) {
    try {
      data = JSON.parse(answer);
    } catch {
      data = { error: answer.slice(0, 200) };
    }
  }
  if (resp.status === 401 && path !== '/v1/session') onUnauthorized();
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}
