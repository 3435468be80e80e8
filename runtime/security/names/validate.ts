/**
 * Validators for every name a client sends that could become part of a file path: artifact names,
 * stage ids, run ids, workflow refs and idempotency keys. A name that passes is one path segment on
 * POSIX and on Windows: it cannot climb (`..`), name a root, a drive or a device, hide (`.x`), or
 * smuggle a separator in a look-alike or invisible character.
 *
 * Names are normalized to Unicode NFC, so the two spellings of "é" name the same file; the normalized
 * form is what validation returns and what callers must use from then on.
 */
import { ValidationError } from "../../config/errors.ts";
import { DNS_LABEL } from "../../config/schema.ts";

export interface NameKindSpec {
  /** How the kind is called in messages. */
  readonly label: string;
  readonly maxBytes: number;
  /** Further shape the kind requires, beyond path safety. */
  readonly pattern?: RegExp;
  readonly patternHint?: string;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ID_HINT = "use letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. a UUID)";

export const NAME_KINDS = {
  artifact: { label: "artifact name", maxBytes: 255 },
  stage: { label: "stage id", maxBytes: 128, pattern: ID, patternHint: ID_HINT },
  run: { label: "run id", maxBytes: 128, pattern: ID, patternHint: ID_HINT },
  workflow: {
    label: "workflow ref",
    maxBytes: 63,
    pattern: DNS_LABEL,
    patternHint: "use the workflow's name from the platform config: lowercase letters, digits and '-'",
  },
  idempotencyKey: { label: "idempotency key", maxBytes: 255, pattern: /^[\x21-\x7e]+$/, patternHint: "use printable ASCII without spaces, e.g. a UUID" },
} as const satisfies Record<string, NameKindSpec>;

export type NameKind = keyof typeof NAME_KINDS;

export type NameCheck = { readonly ok: true; readonly name: string } | { readonly ok: false; readonly problem: string };

/** Windows device names, reserved with any extension and in any case (`con.txt`, `Com1`). */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$|clock\$)(\.|$)/i;
/** Characters Windows forbids in file names (`:` also makes drive letters and NTFS streams). */
const WINDOWS_FORBIDDEN = /[<>:"|?*]/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Format characters: bidi overrides and isolates, zero-width joiners and spaces, the BOM, soft hyphen. */
const INVISIBLE = /\p{Cf}/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why `value` is not a safe single path segment, checked on its NFC form and on its NFKC form
 * (which folds look-alikes such as U+FF0F FULLWIDTH SOLIDUS into `/`). Undefined when it is safe.
 */
export function segmentProblem(value: unknown, maxBytes = 255): string | undefined {
  if (typeof value !== "string") return "must be a string";
  if (value.length === 0) return "is empty";
  if (LONE_SURROGATE.test(value)) return "is not valid Unicode (it holds a lone surrogate)";
  if (value.includes("\u0000")) return "contains a NUL character";
  if (CONTROL.test(value)) return "contains a control character (newline, tab, escape...): use printable characters";
  if (INVISIBLE.test(value)) return "contains an invisible formatting character (bidi control, zero-width space...): remove it";
  const name = value.normalize("NFC");
  for (const form of [name, name.normalize("NFKC")]) {
    const lookAlike = form !== name ? " (after folding look-alike characters)" : "";
    if (form.includes("/") || form.includes("\\")) return `contains a path separator${lookAlike}: a name is a single segment`;
    if (form === "." || form === "..") return `is '${form}'${lookAlike}, which names a directory`;
    if (form.startsWith(".")) return `starts with '.'${lookAlike}: hidden and relative names are not accepted`;
    if (WINDOWS_FORBIDDEN.test(form)) return `contains one of < > : " | ? *${lookAlike}, which Windows forbids (':' also makes drive letters)`;
    if (WINDOWS_DEVICE.test(form)) return `is a reserved Windows device name${lookAlike} (CON, PRN, AUX, NUL, COM1-9, LPT1-9)`;
  }
  if (/[. ]$/.test(name)) return "ends with '.' or a space, which Windows strips (two names would be one file)";
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > maxBytes) return `is ${bytes} bytes long: at most ${maxBytes} bytes (UTF-8)`;
  return undefined;
}

/** Checks a client-sent name of the given kind; on success returns its NFC form. */
export function checkName(kind: NameKind, value: unknown): NameCheck {
  const spec: NameKindSpec = NAME_KINDS[kind];
  const problem = segmentProblem(value, spec.maxBytes);
  if (problem !== undefined) return { ok: false, problem };
  const name = (value as string).normalize("NFC");
  if (spec.pattern !== undefined && !spec.pattern.test(name)) return { ok: false, problem: `is not a valid ${spec.label}: ${spec.patternHint}` };
  return { ok: true, name };
}

/**
 * Returns the NFC form of a safe name, or throws a ValidationError naming `field` (e.g.
 * `outputs[2].name`) and saying what is wrong; the offending value is quoted with escapes visible.
 */
export function safeName(kind: NameKind, value: unknown, field: string): string {
  const result = checkName(kind, value);
  if (result.ok) return result.name;
  const shown = typeof value === "string" ? ` ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}` : "";
  throw new ValidationError(NAME_KINDS[kind].label, [{ field, message: `${NAME_KINDS[kind].label}${shown} ${result.problem}` }]);
}
