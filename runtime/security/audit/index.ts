export { auditEvent, chainHash, GENESIS_HASH, OUTCOMES, type AuditEntry, type AuditEvent, type AuditOutcome } from "./entry.ts";
export { openNodeLogFile, type AuditLogFile, type OpenAuditLogFile } from "./log-file.ts";
export { checkpointSignatureValid, generateSigningKeyPair, keyId, loadPublicKey, loadSigningKey, signCheckpoint, SigningKeyError, type CheckpointClaim, type SignedCheckpoint } from "./signing.ts";
export { checkpointFileName, DirectoryCheckpointSink, readExportedCheckpoints, type CheckpointSink, type ExportedCheckpoints } from "./sink.ts";
export { AuditLogMissingError, verifyAuditLog, verifyAuditStream, type AuditVerifyReport, type BadEntry, type VerifyOptions } from "./verify.ts";
export { AuditLog, AuditUnavailableError, CHECKPOINT_ACTION, LOG_FILE, systemClock, type Appended, type AuditLogOptions, type Clock } from "./writer.ts";
export { auditPaths } from "./paths.ts";
export { AuditLockedError } from "./writer-lock.ts";
