import type { PackId } from "../model.ts";

export interface Pack {
  readonly id: PackId;
  readonly title: string;
  readonly description: string;
  /** The controls of the framework the pack covers; every rule's control mapping must name one of these. */
  readonly controls: Readonly<Record<string, string>>;
}
