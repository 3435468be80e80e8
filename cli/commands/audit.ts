import type { Command } from "commander";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { AuditLogMissingError, auditPaths, generateSigningKeyPair, loadPublicKey, verifyAuditLog, type AuditVerifyReport } from "../../runtime/security/audit/index.ts";
import { CliError, EXIT } from "../errors.ts";

interface VerifyOptions {
  dataDir: string;
  checkpoints?: string;
  publicKey?: string;
  requireSealed?: boolean;
  json?: boolean;
}

/** `gpufabric audit verify`: checks the audit log's hash chain and signed checkpoints. */
export function register(program: Command): void {
  const audit = program.command("audit").description("the tamper-evident audit log");
  audit
    .command("keygen")
    .description("create the Ed25519 key pair that signs audit checkpoints: private.pem (0400, for the signing Secret) and public.pem (for verify)")
    .option("--out <dir>", "where to write the pair (refused if a private key is already there)", "audit-signing")
    .option("--json", "print the paths as JSON")
    .action((options: { out: string; json?: boolean }) => {
      if (existsSync(join(options.out, "private.pem"))) throw new CliError(`${join(options.out, "private.pem")} already exists: keygen never overwrites a signing key (pass another --out)`, EXIT.usage);
      const pair = generateSigningKeyPair(options.out);
      if (options.json) process.stdout.write(`${JSON.stringify(pair, null, 2)}\n`);
      else process.stdout.write(`wrote ${pair.privateKeyPath} (put it in the audit-signing Secret) and ${pair.publicKeyPath} (keep a copy apart from the log for 'gpufabric audit verify --public-key')\n`);
    });
  audit
    .command("verify")
    .description("verify the audit log: exit 0 when intact, 1 naming the first bad entry (or, with --require-sealed, when entries follow the last checkpoint)")
    .option("--data-dir <dir>", "the agent's data directory (the log is DATA_DIR/audit/log.jsonl)", ".gpufabric")
    .option("--checkpoints <dir>", "exported checkpoints to check the log against (default: DATA_DIR/audit-checkpoints)")
    .option("--public-key <path>", "Ed25519 public key (PEM) checkpoints are signed with; prefer a copy kept apart from the log (default: DATA_DIR/audit-signing/public.pem)")
    .option("--require-sealed", "also exit 1 when any entry follows the last signed checkpoint (nothing proves such entries unaltered, nor that none after them were dropped): for a log whose agent has stopped")
    .option("--json", "print the report as JSON")
    .action(async (options: VerifyOptions) => {
      const paths = auditPaths(options.dataDir);
      const publicKeyPath = options.publicKey ?? paths.publicKeyPath;
      if (!existsSync(publicKeyPath)) throw new CliError(`no checkpoint public key at ${publicKeyPath}: pass --public-key`, EXIT.usage);
      if (options.checkpoints && !existsSync(options.checkpoints)) throw new CliError(`--checkpoints ${options.checkpoints} does not exist`, EXIT.usage);
      const checkpointsDir = options.checkpoints ?? (existsSync(paths.checkpointsDir) ? paths.checkpointsDir : undefined);
      let publicKey;
      try {
        publicKey = loadPublicKey(publicKeyPath);
      } catch (err) {
        throw new CliError(`${publicKeyPath}: ${(err as Error).message}`, EXIT.usage);
      }
      let report: AuditVerifyReport;
      try {
        report = await verifyAuditLog(paths.logDir, { publicKey, ...(checkpointsDir && { checkpointsDir }) });
      } catch (err) {
        if (err instanceof AuditLogMissingError) throw new CliError(err.message, EXIT.failure);
        throw err;
      }
      const sealed = report.unsealedEntries === 0;
      const failed = !report.ok || (options.requireSealed === true && !sealed);
      if (options.json) process.stdout.write(`${JSON.stringify({ log: paths.logDir, checkpointsDir: checkpointsDir ?? null, ...report, sealed, requireSealed: options.requireSealed === true, passed: !failed }, null, 2)}\n`);
      else process.stdout.write(describe(report, checkpointsDir, options.requireSealed === true));
      if (failed) process.exitCode = EXIT.failure;
    });
}

function describe(report: AuditVerifyReport, checkpointsDir: string | undefined, requireSealed: boolean): string {
  const notes: string[] = [];
  if (!checkpointsDir) notes.push("note: no exported checkpoints were given (--checkpoints): truncation of the log's tail cannot be detected");
  const unsealed = report.unsealedEntries;
  if (report.ok && unsealed > 0) {
    notes.push(
      requireSealed
        ? `NOT sealed (--require-sealed): entries ${report.lastSeq - unsealed + 1}..${report.lastSeq} follow the last checkpoint; no signature covers them, so nothing proves them unaltered or that none after them were dropped`
        : `note: entries ${report.lastSeq - unsealed + 1}..${report.lastSeq} follow the last checkpoint: chained but not yet signed (a running agent signs them within its checkpoint interval; pass --require-sealed for a stopped agent's log)`
    );
  }
  if (report.ok && report.lastSeq > 0 && !report.closedCleanly) {
    notes.push("note: the log does not end with a clean shutdown (audit.shutdown and its checkpoint): the agent is running, stopped without sealing, or the log was cut; the sink's copies (--checkpoints) tell a cut apart");
  }
  const counts = `${report.checkpointsInLog} checkpoints in the log, ${report.exportedCheckpointsMatched}/${report.exportedCheckpoints} exported checkpoints matched, ${unsealed} entries after the last checkpoint`;
  const head = report.ok
    ? `audit log intact: ${report.entries} entries (last seq ${report.lastSeq}), ${counts}\n`
    : `audit log NOT intact: first bad entry seq ${report.firstBad!.seq}${report.firstBad!.line ? ` (line ${report.firstBad!.line})` : ""}: ${report.firstBad!.reason}\n${report.entries} entries verified before it; ${counts}\n`;
  return head + notes.map((n) => `${n}\n`).join("");
}
