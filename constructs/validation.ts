/**
 * Shared checks for construct props. Each construct collects every problem in its props into one
 * ValidationError, so a user fixes them in one pass instead of one per synth.
 */
import type { IConstruct } from "constructs";
import { ValidationError, type FieldIssue } from "../runtime/config/errors.ts";
import { DNS_LABEL } from "../runtime/config/schema.ts";

/** Collects the issues of one construct's props and throws them together. */
export class PropIssues {
  private readonly issues: FieldIssue[] = [];

  /** @param what names the construct in the message, e.g. `GpuPool 'batch'`. */
  constructor(private readonly what: string) {}

  add(field: string, message: string): void {
    this.issues.push({ field, message });
  }

  get isEmpty(): boolean {
    return this.issues.length === 0;
  }

  throwIfAny(): void {
    if (this.issues.length > 0) throw new ValidationError(this.what, this.issues);
  }

  /** Checks a DNS-1123 label (namespace and object names); `maxLength` leaves room for suffixes. */
  dnsLabel(field: string, value: unknown, maxLength = 63): value is string {
    if (typeof value !== "string" || !DNS_LABEL.test(value)) {
      this.add(
        field,
        `${JSON.stringify(value)} is not a DNS-1123 label: use lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. '${suggestDnsLabel(value)}')`,
      );
      return false;
    }
    if (value.length > maxLength) {
      this.add(field, `'${value}' is ${value.length} characters long: use at most ${maxLength} so that the names derived from it stay valid`);
      return false;
    }
    return true;
  }

  positiveInt(field: string, value: unknown): value is number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      this.add(field, `${JSON.stringify(value)} is not a positive integer: give a whole number of 1 or more`);
      return false;
    }
    return true;
  }

  nonNegativeInt(field: string, value: unknown): value is number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      this.add(field, `${JSON.stringify(value)} is not a whole number of 0 or more: give e.g. 0, 1 or 4`);
      return false;
    }
    return true;
  }

  oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): value is T {
    if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
      this.add(field, `${JSON.stringify(value)} is not allowed: use one of ${allowed.map((a) => `'${a}'`).join(", ")}`);
      return false;
    }
    return true;
  }

  /** Checks extra Kubernetes labels; `reserved` keys belong to gpufabric and may not be overridden. */
  labels(field: string, labels: Readonly<Record<string, string>> | undefined, reserved: readonly string[] = []): void {
    for (const [key, value] of Object.entries(labels ?? {})) {
      const at = `${field}[${JSON.stringify(key)}]`;
      if (!isLabelKey(key)) {
        this.add(at, `'${key}' is not a Kubernetes label key: use an optional DNS-subdomain prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.'`);
      } else if (reserved.includes(key)) {
        this.add(at, `'${key}' is set by gpufabric itself: remove it from ${field}`);
      }
      if (!isLabelValue(value)) {
        this.add(at, `${JSON.stringify(value)} is not a Kubernetes label value: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`);
      }
    }
  }
}

const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isLabelValue(value: unknown): value is string {
  return typeof value === "string" && value.length <= 63 && (value === "" || LABEL_NAME.test(value));
}

export function isLabelKey(key: string): boolean {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length > 0 && name.length <= 63 && LABEL_NAME.test(name);
}

/** A DNS-1123 label close to `value`, for the fix-it hint (`fallback` when nothing of it is left). */
export function suggestDnsLabel(value: unknown, fallback = "my-name"): string {
  const text = typeof value === "string" ? value : fallback;
  const cleaned = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
    .replace(/-+$/g, "");
  return cleaned || fallback;
}

/**
 * Runs a construct's prop checks. When they throw, the half-built construct is detached from its
 * scope, so a caller that catches the error (a test, a REPL) can declare it again under the same id.
 */
export function checkedProps<T>(construct: IConstruct, check: () => T): T {
  try {
    return check();
  } catch (err) {
    construct.node.scope?.node.tryRemoveChild(construct.node.id);
    throw err;
  }
}
