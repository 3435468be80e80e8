/**
 * Names of the files a stage hands on. They become file names in other workspaces, download names and
 * log lines, so only plain single names are accepted.
 */
const MAX_NAME_BYTES = 255;

/** Why a name is refused, or undefined when it is acceptable. */
export function artifactNameProblem(name: string): string | undefined {
  if (name.length === 0) return "is empty";
  if (name === "." || name === "..") return `'${name}' names a directory, not a file`;
  if (name.includes("/") || name.includes("\\")) return "contains a path separator: write files at the top of GPUFABRIC_OUTPUT_DIR, not in subfolders";
  if (/[\x00-\x1f\x7f]/.test(name)) return "contains a control character (newline, tab, NUL...): use printable characters";
  if (name.includes("\uFFFD")) return "is not valid UTF-8: use UTF-8 file names";
  if (Buffer.byteLength(name, "utf8") > MAX_NAME_BYTES) return `is longer than ${MAX_NAME_BYTES} bytes`;
  return undefined;
}

/** A path segment built from an id (run, stage): it must not be able to climb out of its folder. */
export function assertSafeSegment(what: string, value: string): void {
  const problem = artifactNameProblem(value);
  if (problem) throw new Error(`${what} '${value}' cannot name a folder: it ${problem}`);
}
