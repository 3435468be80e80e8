export { auditEvent, chainHash, GENESIS_HASH, OUTCOMES, type AuditEntry, type AuditEvent, type AuditOutcome } from "./entry.ts";
export { openNodeLogFile, type AuditLogFile, type OpenAuditLogFile } from "./log-file.ts";
export { checkpointSignatureValid, generateSigningKeyPair, keyId, loadPublicKey, loadSigningKey, signCheckpoint, SigningKeyError, type CheckpointClaim, type SignedCheckpoint } from "./signing.ts";
export { checkpointFileName, CheckpointSinkConflictError, DirectoryCheckpointSink, readExportedCheckpoints, type CheckpointSink, type ExportedCheckpoints } from "./sink.ts";
export { AuditLogMissingError, verifyAuditLog, verifyAuditStream, type AuditVerifyReport, type BadEntry, type StreamVerifyOptions, type VerifyOptions } from "./verify.ts";
export { AuditTailError, verifyTailAtOpen, type VerifiedTail } from "./tail.ts";
export { AuditLog, AuditUnavailableError, CHECKPOINT_ACTION, LOG_FILE, systemClock, UNSEALED_TAIL_ACTION, type Appended, type AuditLogOptions, type Clock, type UnsealedTail } from "./writer.ts";
export { auditPaths } from "./paths.ts";
export { AuditLockedError } from "./writer-lock.ts";
