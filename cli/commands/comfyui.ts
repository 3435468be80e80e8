import { Option, type Command } from "commander";
import { readFileSync, statSync } from "node:fs";
import { keyFileProblem } from "../../runtime/security/crypto/private-file.ts";
import { GatewayOptionError, startComfyGateway } from "../comfyui-gateway.ts";
import { CliError, EXIT } from "../errors.ts";
import { untilSignalled } from "../signals.ts";

interface ProxyCliOptions {
  agent: string;
  tokenFile: string;
  port: string;
  host: string;
  caFile?: string;
  ca?: string;
}

/**
 * `gpufabric comfyui proxy`: a ComfyUI server address on this machine (127.0.0.1:8188 by default) that
 * forwards to the fabric's ComfyUI API with the tenant's token, so that ComfyUI clients work unchanged
 * and hold no credential. Serves until SIGTERM or SIGINT.
 */
export function register(program: Command): void {
  const comfyui = program.command("comfyui").description("work with the fabric's ComfyUI-compatible API");
  comfyui
    .command("proxy")
    .description("serve the fabric's ComfyUI API on loopback, adding your token, for unmodified ComfyUI clients")
    .addOption(new Option("--agent <url>", "the agent's URL, e.g. https://gpufabric.example.internal:8443 (its ComfyUI API is under /comfyui)").env("GPUFABRIC_AGENT").makeOptionMandatory())
    .addOption(new Option("--token-file <file>", "file holding your tenant's API token (gf_…), private to you (chmod 600)").env("GPUFABRIC_TOKEN_FILE").makeOptionMandatory())
    .option("--port <n>", "local port (ComfyUI's own by default; 0 picks a free one)", "8188")
    .option("--host <address>", "loopback address to listen on: 127.0.0.1, ::1 or localhost", "127.0.0.1")
    .option("--ca-file <file>", "CA certificate the agent's TLS certificate is checked against (a private CA)")
    .addOption(new Option("--ca <file>", "same as --ca-file").hideHelp())
    .action(async (options: ProxyCliOptions) => {
      const token = readToken(options.tokenFile);
      const caPath = options.caFile ?? options.ca;
      let ca: Buffer | undefined;
      if (caPath !== undefined) {
        try {
          ca = readFileSync(caPath);
        } catch (err) {
          throw new CliError(`--ca-file: ${caPath} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): give the CA certificate (PEM) the agent's certificate is signed by`, EXIT.usage);
        }
      }
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be a port number from 0 to 65535 (got '${options.port}')`, EXIT.usage);
      let gateway;
      try {
        gateway = await startComfyGateway({ agentUrl: options.agent, token, host: options.host, port, ...(ca ? { ca } : {}) });
      } catch (err) {
        if (err instanceof GatewayOptionError) throw new CliError(err.message, EXIT.usage);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EADDRINUSE") throw new CliError(`--port: ${options.host}:${port} is in use (a ComfyUI server already running?): stop it or pass another --port`, EXIT.usage);
        throw err;
      }
      // Never the token: only where to point clients and where requests go.
      process.stdout.write(`gpufabric: ComfyUI API of ${gateway.upstream} served at ${gateway.url}\n`);
      await untilSignalled(() => gateway.close());
    });
}

/** The token, trimmed; a file that others may read is refused as key files are (the token is a tenant's credential). */
function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CliError(`--token-file: ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): put your tenant's API token in that file`, EXIT.usage);
  }
  // POSIX permission bits mean nothing on Windows.
  if (process.platform !== "win32") {
    const stat = statSync(file);
    const problem = keyFileProblem(file, { mode: stat.mode & 0o777, uid: stat.uid });
    if (problem !== undefined) throw new CliError(`--token-file: ${problem}`, EXIT.usage);
  }
  const token = text.trim();
  if (token === "") throw new CliError(`--token-file: ${file} is empty: put your tenant's API token in it`, EXIT.usage);
  return token;
}
