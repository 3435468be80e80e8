/**
 * The TLS a control plane demands of its database connection (cluster.databaseSslMode): a URL without
 * `sslmode` gets the demanded one; a URL with a weaker one is refused, naming both. The URL itself is never
 * echoed (it may hold a password).
 */
import { ValidationError } from "../../config/errors.ts";
import type { ClusterConfig } from "../../config/schema.ts";

type SslMode = ClusterConfig["databaseSslMode"];
const STRENGTH: Readonly<Record<string, number>> = { disable: 0, allow: 0, prefer: 0, "no-verify": 0, require: 1, "verify-ca": 2, "verify-full": 3 };

export function withSslMode(url: string, required: SslMode): string {
  const q = url.indexOf("?");
  const params = new URLSearchParams(q === -1 ? "" : url.slice(q + 1));
  const given = params.get("sslmode");
  if (given === null) {
    if (required === "disable") return url;
    params.set("sslmode", required);
    return `${q === -1 ? url : url.slice(0, q)}?${params.toString()}`;
  }
  const strength = STRENGTH[given];
  if (strength === undefined) {
    throw new ValidationError("agent options", [{ field: "database", message: `its sslmode '${given.slice(0, 20)}' is not a libpq sslmode: use verify-full, verify-ca, require or disable` }]);
  }
  if (strength < STRENGTH[required]!) {
    throw new ValidationError("agent options", [
      { field: "database", message: `its sslmode '${given}' is weaker than cluster.databaseSslMode '${required}': use sslmode=${required} (with sslrootcert=<the CA file>), or lower databaseSslMode for a database on the same host` },
    ]);
  }
  return url;
}
