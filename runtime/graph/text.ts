/** Workflow documents read from text (JSON or YAML), with caps against hostile input. */
import { parse as parseYaml } from "yaml";
import { ValidationError } from "../config/errors.ts";
import { GRAPH_LIMITS } from "./model.ts";

/** YAML aliases a document may resolve; far below what an alias bomb needs to expand. */
export const MAX_YAML_ALIASES = 100;

/**
 * Nesting a YAML document may have. The YAML parser recurses per level, so a document of thousands of
 * nested `[` would exhaust the stack; real workflows nest a handful of levels.
 */
export const MAX_YAML_NESTING = 256;

/** Parses the text of a workflow file into a plain document (not yet validated as a workflow). */
export function parseDocumentText(text: string, source: string): unknown {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > GRAPH_LIMITS.maxDocumentBytes) {
    throw new ValidationError(source, [
      { field: "(root)", message: `is ${bytes} bytes, more than the limit of ${GRAPH_LIMITS.maxDocumentBytes}: split the workflow or drop embedded data` },
    ]);
  }
  // JSON.parse is much faster on large prompts; YAML (a superset of JSON) covers everything else.
  const looksLikeJson = /^\s*[{[]/.test(text);
  if (looksLikeJson) {
    try {
      return JSON.parse(text);
    } catch (err) {
      if (/\.json$/i.test(source) || err instanceof RangeError) throw new ValidationError(source, [{ field: "(root)", message: describeParseError(err, "JSON") }]);
    }
  }
  const depth = yamlNestingEstimate(text);
  if (depth > MAX_YAML_NESTING) {
    throw new ValidationError(source, [{ field: "(root)", message: `nests about ${depth} levels deep, more than the limit of ${MAX_YAML_NESTING}: flatten the document` }]);
  }
  try {
    return parseYaml(text, { maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    throw new ValidationError(source, [{ field: "(root)", message: describeParseError(err, "YAML") }]);
  }
}

function describeParseError(err: unknown, language: string): string {
  if (err instanceof ReferenceError && /alias/i.test(err.message)) {
    return `uses more than ${MAX_YAML_ALIASES} YAML aliases, which is refused as a resource-exhaustion risk: write the values out`;
  }
  if (err instanceof RangeError) return "is nested too deeply to parse: flatten the document";
  return `is not valid ${language}: ${(err as Error).message.split("\n")[0]}`;
}

/**
 * An upper estimate of a YAML document's nesting: the deepest run of open flow brackets (outside quoted
 * scalars and comments) plus the longest indentation (block nesting needs at least one column a level;
 * `- - -` sequences on one line count as indentation too).
 */
export function yamlNestingEstimate(text: string): number {
  let flow = 0;
  let maxFlow = 0;
  let maxIndent = 0;
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\n") {
      lineStart = true;
      indent = 0;
      continue;
    }
    if (lineStart) {
      if (c === " " || c === "\t" || c === "-" || c === "?") {
        indent++;
        if (indent > maxIndent) maxIndent = indent;
        continue;
      }
      lineStart = false;
    }
    // A quote opens a quoted scalar only where a value can start (not the apostrophe in "it's").
    const valueStart = i === 0 || /[\s[{,:]/.test(text[i - 1]!);
    if (c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) {
      while (i + 1 < text.length && text[i + 1] !== "\n") i++;
    } else if (c === '"' && valueStart) {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (c === "'" && valueStart) {
      for (i++; i < text.length; i++) {
        if (text[i] === "'") {
          if (text[i + 1] === "'") i++;
          else break;
        }
      }
    } else if (c === "[" || c === "{") {
      flow++;
      if (flow > maxFlow) maxFlow = flow;
    } else if ((c === "]" || c === "}") && flow > 0) {
      flow--;
    }
  }
  return maxFlow + maxIndent;
}
