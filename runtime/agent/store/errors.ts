/** Errors of the store layer that both stores raise. */

/** The database cannot be trusted with more writes (a failed sync), or cannot be reached: the write is refused. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }
}
