/** Hash routes of the dashboard (`/ui/#/runs/<id>` …), parsed without the DOM. */

export type Route =
  | { page: "login" }
  | { page: "runs" }
  | { page: "run"; id: string }
  | { page: "gpus" }
  | { page: "fairshare" }
  | { page: "workflow"; name: string }
  | { page: "admin" }
  | { page: "usage" }
  | { page: "not-found"; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "").replace(/\?.*$/, "");
  const parts = path.split("/").filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const [head, arg] = parts;
  if (parts.length === 0) return { page: "runs" };
  if (parts.length === 1) {
    if (head === "runs" || head === "gpus" || head === "fairshare" || head === "admin" || head === "usage" || head === "login") return { page: head };
  }
  if (parts.length === 2 && head === "runs") return { page: "run", id: arg! };
  if (parts.length === 2 && head === "workflows") return { page: "workflow", name: arg! };
  return { page: "not-found", path };
}

export function runHref(id: string): string {
  return `#/runs/${encodeURIComponent(id)}`;
}

export function workflowHref(name: string): string {
  return `#/workflows/${encodeURIComponent(name)}`;
}

/**
 * The token `npm start` prints in its link (`/ui/#token=…`), read once. Only that exact fragment form is
 * accepted; the page strips it from the address right after reading it.
 */
export function tokenFromHash(hash: string): string | null {
  const m = /^#token=([^&]+)$/.exec(hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return null;
  }
}
