/** Workflow documents read from text (JSON or YAML), with caps against hostile input. */
import { parse as parseYaml } from "yaml";
import { ValidationError, formatPath } from "../config/errors.ts";
import { GRAPH_LIMITS } from "./model.ts";

/** YAML aliases a document may resolve; far below what an alias bomb needs to expand. */
export const MAX_YAML_ALIASES = 100;

/**
 * Nesting a document may have. The YAML parser, JSON.stringify and structured cloning recurse per
 * level, so a document of thousands of nested `[` would exhaust the stack somewhere; real workflows
 * nest a handful of levels.
 */
export const MAX_NESTING = 256;

/** Parses the text of a workflow file into a plain document (not yet validated as a workflow). */
export function parseDocumentText(text: string, source: string): unknown {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > GRAPH_LIMITS.maxDocumentBytes) {
    throw new ValidationError(source, [
      { field: "(root)", message: `is ${bytes} bytes, more than the limit of ${GRAPH_LIMITS.maxDocumentBytes}: split the workflow or drop embedded data` },
    ]);
  }
  // JSON has no block nesting; YAML's indentation counts as nesting too.
  const depth = nestingEstimate(text, !/^\s*[{[]/.test(text));
  if (depth > MAX_NESTING) {
    throw new ValidationError(source, [{ field: "(root)", message: `nests about ${depth} levels deep, more than the limit of ${MAX_NESTING}: flatten the document` }]);
  }
  const doc = parseText(text, source);
  const reserved = findProtoKey(doc);
  if (reserved !== undefined) {
    throw new ValidationError(source, [{ field: reserved, message: "'__proto__' is not allowed as a field name or id: rename it" }]);
  }
  return doc;
}

function parseText(text: string, source: string): unknown {
  // JSON.parse is much faster on large prompts; YAML (a superset of JSON) covers everything else.
  const looksLikeJson = /^\s*[{[]/.test(text);
  if (looksLikeJson) {
    try {
      return JSON.parse(text);
    } catch (err) {
      if (/\.json$/i.test(source) || err instanceof RangeError) throw new ValidationError(source, [{ field: "(root)", message: describeParseError(err, "JSON") }]);
    }
  }
  try {
    return parseYaml(text, { maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    throw new ValidationError(source, [{ field: "(root)", message: describeParseError(err, "YAML") }]);
  }
}

/**
 * Path of the first `__proto__` key anywhere in the document. Such a key would silently replace an
 * object's prototype when copied, so it is refused rather than dropped. Iterative: depth is unbounded.
 */
export function findProtoKey(doc: unknown): string | undefined {
  // Each entry points at its parent, so the path is only built for the key that is found.
  interface Visit {
    readonly value: unknown;
    readonly key?: PropertyKey;
    readonly parent?: Visit;
  }
  const pathOf = (visit: Visit | undefined, last: PropertyKey): string => {
    const path: PropertyKey[] = [last];
    for (let v = visit; v?.key !== undefined; v = v.parent) path.unshift(v.key);
    return formatPath(path);
  };
  const stack: Visit[] = [{ value: doc }];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    const value = visit.value;
    if (typeof value !== "object" || value === null) continue;
    if (Array.isArray(value)) {
      value.forEach((item, i) => stack.push({ value: item, key: i, parent: visit }));
      continue;
    }
    for (const key of Object.keys(value)) {
      if (key === "__proto__") return pathOf(visit, key);
      stack.push({ value: (value as Record<string, unknown>)[key], key, parent: visit });
    }
  }
  return undefined;
}

function describeParseError(err: unknown, language: string): string {
  if (err instanceof ReferenceError && /alias/i.test(err.message)) {
    return `uses more than ${MAX_YAML_ALIASES} YAML aliases, which is refused as a resource-exhaustion risk: write the values out`;
  }
  if (err instanceof RangeError) return "is nested too deeply to parse: flatten the document";
  return `is not valid ${language}: ${(err as Error).message.split("\n")[0]}`;
}

/**
 * An upper estimate of a document's nesting: the deepest run of open brackets (outside quoted strings
 * and comments), plus, for YAML block style, the longest indentation (block nesting needs at least one
 * column a level; `- - -` sequences on one line count as indentation too).
 */
export function nestingEstimate(text: string, countIndentation = true): number {
  let flow = 0;
  let maxFlow = 0;
  let maxIndent = 0;
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === NEWLINE) {
      lineStart = true;
      indent = 0;
      continue;
    }
    if (lineStart) {
      if (c === SPACE || c === TAB || c === DASH || c === QUESTION) {
        indent++;
        if (indent > maxIndent) maxIndent = indent;
        continue;
      }
      lineStart = false;
    }
    const previous = i === 0 ? NEWLINE : text.charCodeAt(i - 1);
    const afterSpace = previous === SPACE || previous === TAB || previous === NEWLINE || previous === RETURN;
    // A quote opens a quoted scalar only where a value can start (not the apostrophe in "it's").
    const valueStart = afterSpace || previous === OPEN_SQUARE || previous === OPEN_CURLY || previous === COMMA || previous === COLON;
    if (c === HASH && afterSpace) {
      while (i + 1 < text.length && text.charCodeAt(i + 1) !== NEWLINE) i++;
    } else if (c === DOUBLE_QUOTE && valueStart) {
      for (i++; i < text.length && text.charCodeAt(i) !== DOUBLE_QUOTE; i++) if (text.charCodeAt(i) === BACKSLASH) i++;
    } else if (c === SINGLE_QUOTE && valueStart) {
      for (i++; i < text.length; i++) {
        if (text.charCodeAt(i) === SINGLE_QUOTE) {
          if (text.charCodeAt(i + 1) === SINGLE_QUOTE) i++;
          else break;
        }
      }
    } else if (c === OPEN_SQUARE || c === OPEN_CURLY) {
      flow++;
      if (flow > maxFlow) maxFlow = flow;
    } else if ((c === CLOSE_SQUARE || c === CLOSE_CURLY) && flow > 0) {
      flow--;
    }
  }
  return maxFlow + (countIndentation ? maxIndent : 0);
}

const [NEWLINE, RETURN, SPACE, TAB, DASH, QUESTION, HASH, DOUBLE_QUOTE, SINGLE_QUOTE, BACKSLASH, OPEN_SQUARE, CLOSE_SQUARE, OPEN_CURLY, CLOSE_CURLY, COMMA, COLON] = [
  ..."\n\r \t-?#\"'\\[]{},:",
].map((ch) => ch.charCodeAt(0)) as [number, number, number, number, number, number, number, number, number, number, number, number, number, number, number, number];
