import type { Command } from "commander";
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { ValidationError } from "../../runtime/config/errors.ts";
import { defaultSubject, generateToken, parseTokenFile } from "../../runtime/security/identity/index.ts";
import { CliError, EXIT } from "../errors.ts";

interface CreateOptions {
  dir: string;
  subject?: string;
  json?: boolean;
}

/** Tenant names are DNS labels in the platform config; the file is named after the tenant. */
const TENANT = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * `gpufabric tokens create TENANT`: a new API token for a tenant. The token is printed once and never
 * stored; its hash line is appended to `DIR/TENANT`, the file layout of the tokens Secret the agent mounts
 * (`kubectl create secret generic NAME --from-file=DIR`).
 */
export function register(program: Command): void {
  const tokens = program.command("tokens").description("static per-tenant API tokens (stored only as hashes)");
  tokens
    .command("create")
    .description("generate a token for TENANT: print it once, append its hash to DIR/TENANT")
    .argument("<tenant>", "the tenant's name in the platform config")
    .option("--dir <dir>", "the token files' directory (one file per tenant, as the tokens Secret holds them)", "tokens")
    .option("--subject <name>", "who holds the token (what the tenant's roles refer to); default: token-<hash prefix>, a viewer")
    .option("--json", "print { tenant, subject, token, file } as JSON")
    .action((tenant: string, options: CreateOptions) => {
      if (!TENANT.test(tenant)) throw new CliError(`tenant '${tenant}' is not a tenant name: use the name from the platform config (lowercase letters, digits and '-')`, EXIT.usage);
      let generated;
      try {
        generated = generateToken(options.subject);
      } catch (err) {
        if (err instanceof ValidationError) throw new CliError(`--subject: ${err.issues[0]?.message ?? err.message}`, EXIT.usage);
        throw err;
      }
      const file = join(options.dir, tenant);
      if (existsSync(file)) {
        if (!statSync(file).isFile()) throw new CliError(`${file} is not a file: pass another --dir`, EXIT.usage);
        try {
          parseTokenFile(readFileSync(file, "utf8"), file);
        } catch (err) {
          throw new CliError(`${file} is not a token file (${(err as Error).message}); fix or move it first`, EXIT.usage);
        }
      }
      mkdirSync(options.dir, { recursive: true, mode: 0o700 });
      appendFileSync(file, `${generated.line}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
      const subject = options.subject ?? defaultSubject(Buffer.from(generated.hash.slice("sha256:".length), "hex"));
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ tenant, subject, token: generated.token, file: resolve(file) }, null, 2)}\n`);
      } else {
        process.stdout.write(`${generated.token}\n`);
        process.stderr.write(`token for tenant '${tenant}' (subject ${subject}): its hash is in ${file}; the token is shown only this once\n`);
      }
    });
}
