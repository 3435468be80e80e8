/**
 * Depth limits for client JSON, checked without recursion. Every later walk over a document (the
 * ComfyUI importer, schema validation, canonical JSON, JSON.stringify when a field is sealed) recurses,
 * and a document nested 200,000 levels deep overflows the stack of each: so depth is checked first,
 * on the raw text before it is parsed (scanJsonTextDepth), or on a parsed value (findTooDeep), both
 * with explicit stacks, and the walks run only on what passed.
 */

/** Arrays and objects nested deeper than this are refused unless the agent is started with a larger limit. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/** Path segments shown of a too-deep path before it is shortened with '…'. */
const SHOWN_SEGMENTS = 8;
const MAX_KEY_CHARS = 40;

export type JsonPathSegment = string | number;

export interface TooDeep {
  /** Where the first container beyond the limit sits, from the document's root. */
  readonly path: readonly JsonPathSegment[];
  readonly maxDepth: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;

/**
 * Scans JSON text for arrays and objects nested deeper than `maxDepth` (the root container is level 1),
 * counting brackets outside strings only. Malformed text is left to the parser: this only looks at
 * nesting. O(length), with a stack of at most `maxDepth` entries.
 */
export function scanJsonTextDepth(text: string, maxDepth: number): TooDeep | undefined {
  // Per open container: whether it is an object, and the key (start, end in text) or index it is at.
  const isObject: boolean[] = [];
  const keyStart: number[] = [];
  const keyEnd: number[] = [];
  const index: number[] = [];
  let depth = 0;
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i + 1;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) i += 2;
        else if (d === QUOTE) break;
        else i++;
      }
      if (depth > 0 && isObject[depth - 1] && expectKey) {
        keyStart[depth - 1] = start;
        keyEnd[depth - 1] = Math.min(i, n);
        expectKey = false;
      }
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (depth === maxDepth) {
        const path: JsonPathSegment[] = [];
        for (let level = 0; level < depth; level++) {
          path.push(isObject[level] ? decodeKey(text.slice(keyStart[level], keyEnd[level])) : index[level]!);
        }
        return { path, maxDepth };
      }
      isObject[depth] = c === OPEN_OBJECT;
      keyStart[depth] = 0;
      keyEnd[depth] = 0;
      index[depth] = 0;
      depth++;
      expectKey = c === OPEN_OBJECT;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      if (depth > 0) depth--;
      expectKey = false;
    } else if (c === COMMA && depth > 0) {
      if (isObject[depth - 1]) expectKey = true;
      else index[depth - 1]!++;
    }
  }
  return undefined;
}

function decodeKey(raw: string): string {
  const shown = raw.length > MAX_KEY_CHARS * 2 ? raw.slice(0, MAX_KEY_CHARS * 2) : raw;
  if (!shown.includes("\\")) return shown;
  try {
    return JSON.parse(`"${shown}"`) as string;
  } catch {
    return shown;
  }
}

/** The same limit over an already parsed value (a workflow file read from disk, a config document). */
export function findTooDeep(value: unknown, maxDepth: number): TooDeep | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  // Explicit stack of [container, its path, its level]; paths are shared prefixes, built only on failure.
  const stack: Array<{ value: object; level: number; parent: number; key: JsonPathSegment }> = [];
  const seen: Array<{ parent: number; key: JsonPathSegment }> = [];
  stack.push({ value, level: 1, parent: -1, key: "" });
  while (stack.length > 0) {
    const top = stack.pop()!;
    const me = seen.length;
    seen.push({ parent: top.parent, key: top.key });
    const children: Array<[JsonPathSegment, unknown]> = Array.isArray(top.value) ? top.value.map((v, i) => [i, v]) : Object.entries(top.value);
    for (const [key, child] of children) {
      if (typeof child !== "object" || child === null) continue;
      if (top.level === maxDepth) {
        const path: JsonPathSegment[] = [key];
        for (let at = me; at > 0; at = seen[at]!.parent) path.push(seen[at]!.key);
        return { path: path.reverse(), maxDepth };
      }
      stack.push({ value: child, level: top.level + 1, parent: me, key });
    }
  }
  return undefined;
}

/** `inputs.a.a.a.a.a.a.a…` for a path, shortened, keys that are not plain words quoted. */
export function formatJsonPath(path: readonly JsonPathSegment[], prefix = ""): string {
  let out = prefix;
  const shown = path.slice(0, SHOWN_SEGMENTS);
  for (const segment of shown) {
    if (typeof segment === "number") out += `[${segment}]`;
    else {
      const key = segment.length > MAX_KEY_CHARS ? `${segment.slice(0, MAX_KEY_CHARS)}…` : segment;
      const plain = /^[A-Za-z0-9_$:-]+$/.test(key) ? key : JSON.stringify(key);
      out += out === "" ? plain : `.${plain}`;
    }
  }
  return path.length > shown.length ? `${out}…` : out === "" ? "(root)" : out;
}

/** What a 400 says about a too-deep document: where, the limit, and the fix. */
export function tooDeepMessage(tooDeep: TooDeep): string {
  return `arrays and objects are nested more than ${tooDeep.maxDepth} levels deep: flatten the document (or, for the agent's operator, raise the limit with --max-json-depth)`;
}
