/**
 * The dashboard's API client. Requests carry the HttpOnly session cookie (same origin); requests that change
 * something also carry the CSRF token the session answered with, held in memory only (never in storage, so
 * another page's script cannot read it). A 401 sends the page to the login form.
 */

export interface Session {
  readonly subject: string;
  readonly tenant: string;
  readonly role: string;
  readonly csrfToken: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
let onUnauthorized: () => void = () => undefined;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

async function errorOf(res: Response): Promise<ApiError> {
  let code = `http-${res.status}`;
  let message = `${res.status} ${res.statusText}`;
  let field: string | undefined;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string; field?: string } };
    if (body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      field = body.error.field;
    }
  } catch {
    // Not JSON (a proxy's page): the status line says enough.
  }
  return new ApiError(res.status, code, message, field);
}

export async function request(path: string, init: { method?: string; body?: unknown; quiet401?: boolean } = {}): Promise<Response> {
  const method = init.method ?? "GET";
  const headers: Record<string, string> = { accept: "application/json" };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["x-csrf-token"] = csrfToken;
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && !init.quiet401) onUnauthorized();
    throw err;
  }
  return res;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await request(path)).json()) as T;
}

export async function postJson<T>(path: string, body: unknown = {}): Promise<T> {
  const res = await request(path, { method: "POST", body });
  return (res.status === 204 ? undefined : await res.json()) as T;
}

/** Exchanges a pasted API token for the session cookie. */
export async function login(token: string): Promise<Session> {
  const res = await request("/ui/session", { method: "POST", body: { token }, quiet401: true });
  const session = (await res.json()) as Session;
  setCsrfToken(session.csrfToken);
  return session;
}

/** Who is logged in (after a reload the CSRF token is read again from here), or null. */
export async function currentSession(): Promise<Session | null> {
  try {
    const res = await request("/ui/session", { quiet401: true });
    const session = (await res.json()) as Session;
    setCsrfToken(session.csrfToken);
    return session;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

export async function logout(): Promise<void> {
  try {
    await request("/ui/session/logout", { method: "POST", body: {}, quiet401: true });
  } finally {
    setCsrfToken(null);
  }
}

export function messageOf(err: unknown): string {
  if (err instanceof ApiError) return `${err.message}${err.field ? ` (${err.field})` : ""}`;
  return err instanceof Error ? err.message : String(err);
}
