/**
 * Tables looked up by names that clients send (ComfyUI class types): built without a prototype, so that
 * "__proto__", "constructor" or "toString" find nothing instead of Object.prototype's members.
 */
export function withoutPrototype<T>(entries: Readonly<Record<string, T>>): Readonly<Record<string, T>> {
  return Object.freeze(Object.assign(Object.create(null) as Record<string, T>, entries));
}
