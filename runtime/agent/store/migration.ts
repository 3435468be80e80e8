/** A numbered schema change, as both stores record and apply them. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

/** Both stores refuse a schema newer than they know: its meaning may have changed under them. */
export function newerSchemaMessage(current: number, known: number, elsewhere = "point --data-dir at another directory"): string {
  return `the store's schema is at version ${current} but this agent knows versions up to ${known}: run a newer agent, or ${elsewhere}`;
}
