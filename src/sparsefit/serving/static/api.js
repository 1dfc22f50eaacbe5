/* The studio's JSON API client. Requests go with credentials "same-origin": when the studio runs with a
 * token, the server set it as an HttpOnly cookie on the page's ?token= link and the browser sends it back;
 * this page never sees the token itself. */

/** A failed request: message "METHOD path → status: detail (hint)"; status 0 when the server did not answer. */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {  // FastAPI validation errors
    return detail.map((d) => (d && d.msg ? `${(d.loc || []).filter((x) => x !== "body").join(".")}: ${d.msg}` : JSON.stringify(d))).join("; ");
  }
  return JSON.stringify(detail);
}

/** fetch() a JSON endpoint; non-2xx answers throw an ApiError carrying the server's "detail". */
export async function api(path, { method = "GET", body, form } = {}) {
  const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (form) opts.body = form;
  else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (err) {
    throw new ApiError(`${method} ${path}: the studio server does not answer (${err.message})`, 0);
  }
  const raw = await res.text();
  let data = null;
  try {
    data = raw ? JSON.parse(raw) : null;
  } catch (_) {
    data = null;
  }
  if (!res.ok) {
    let detail = data && data.detail !== undefined ? describeDetail(data.detail) : raw.trim().slice(0, 300) || res.statusText;
    if (data && data.hint) detail += ` (${data.hint})`;
    throw new ApiError(`${method} ${path} → ${res.status}: ${detail}`, res.status);
  }
  if (data === null && raw) throw new ApiError(`${method} ${path}: the answer is not JSON`, res.status);
  return data;
}

/** A path segment or query value, URL-encoded. */
export const enc = encodeURIComponent;
