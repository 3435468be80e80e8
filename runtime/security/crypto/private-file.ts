/**
 * Who may read a secret key file (the keyring's versions, the audit signing key).
 *
 * Others never. The group only when root owns the file: that is how the kubelet writes a Secret volume
 * for a pod with an fsGroup (root-owned, group fsGroup, and defaultMode 0400 widened to 0440), so a
 * non-root agent reads its keys through the group. A file the agent's own user owns must be private to
 * it, as PostgreSQL requires of its TLS key.
 */
export interface FileOwnership {
  /** Permission bits (`stat.mode & 0o777`). */
  readonly mode: number;
  /** Owner's user id. */
  readonly uid: number;
}

/** Why `file` is not private enough for a key, with the fix; undefined when it is. */
export function keyFileProblem(file: string, { mode, uid }: FileOwnership): string | undefined {
  const octal = mode.toString(8).padStart(4, "0");
  if (mode & 0o007) return `${file} is readable by others (mode ${octal}): run 'chmod 600 ${file}' (for a Kubernetes Secret volume set defaultMode: 0400 or 0440)`;
  if ((mode & 0o070) === 0) return undefined;
  if (uid !== 0) return `${file} is readable by its group (mode ${octal}) and not owned by root: run 'chmod 600 ${file}'`;
  if (mode & 0o030) return `${file} is writable or executable by its group (mode ${octal}): use defaultMode 0440 for its Secret volume`;
  return undefined;
}
