/** The entries the audit log writes about itself (actor CHECKPOINT_ACTOR); no client can record these. */

/** The log's own actor. */
export const CHECKPOINT_ACTOR = "gpufabric-audit";
/** Checkpoint entries carry this action; verify checks every one of them. */
export const CHECKPOINT_ACTION = "audit.checkpoint";
/** Written by a clean close just before its final checkpoint: nothing may follow that checkpoint but a START_ACTION. */
export const SHUTDOWN_ACTION = "audit.shutdown";
/** Written, then sealed by a checkpoint, by an open that continues a log its writer closed cleanly. */
export const START_ACTION = "audit.start";
/** Recorded at open when the log held entries no checkpoint had signed (the writer stopped without sealing). */
export const UNSEALED_TAIL_ACTION = "audit.unsealed-tail";
