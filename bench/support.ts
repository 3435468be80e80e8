/** What the benchmarks share: their whole-number options, nearest-rank percentiles, and a light POST. */
import { request, type Agent } from "node:http";

/** `--name N` from the command line (or `fallback`), a whole number of 1 or more; exits 2 naming the option otherwise. */
export function intArg(name: string, fallback: number | string): number {
  const i = process.argv.indexOf(`--${name}`);
  const n = Number(i === -1 ? fallback : process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name} must be a whole number of 1 or more\n`);
    process.exit(2);
  }
  return n;
}

/** Nearest-rank percentile (0 for no values). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * POSTs over keep-alive connections with node:http: a lighter load generator than fetch, so that
 * less of the shared cores goes to the client. Resolves with the status code.
 */
export function post(url: string, headers: Record<string, string>, body: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { ...headers, "content-length": Buffer.byteLength(body) }, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}
