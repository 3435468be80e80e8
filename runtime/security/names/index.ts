export { NAME_KINDS, checkName, safeName, segmentProblem, type NameCheck, type NameKind, type NameKindSpec } from "./validate.ts";
export { UnsafePathError, isStrictlyInside, openInside, resolveInside, type UnsafePathReason } from "./resolve-inside.ts";
