import { join } from "node:path";

/** The keyring's default place under an agent's data directory. */
export function keyringPath(dataDir: string): string {
  return join(dataDir, "keyring");
}
