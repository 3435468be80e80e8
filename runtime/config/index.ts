import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { ValidationError, issuesFromZod } from "./errors.ts";
import { PlatformConfigSchema, type PlatformConfig } from "./schema.ts";

export * from "./schema.ts";
export * from "./errors.ts";

/** Key of the platform config inside the ConfigMap that WorkflowDeployment synthesizes. */
export const CONFIG_MAP_KEY = "platform.json";

/** Validates a platform config object; throws a ValidationError naming every bad field. */
export function parsePlatformConfig(input: unknown, source = "platform config"): PlatformConfig {
  const result = PlatformConfigSchema.safeParse(input);
  if (!result.success) throw new ValidationError(source, issuesFromZod(result.error));
  return result.data;
}

/** Reads and validates a platform config file (JSON or YAML). */
export function loadPlatformConfig(file: string): PlatformConfig {
  const text = readFileSync(file, "utf8");
  let doc: unknown;
  try {
    doc = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ValidationError(file, [{ field: "(root)", message: `not valid ${file.endsWith(".json") ? "JSON" : "YAML"}: ${(err as Error).message}` }]);
  }
  return parsePlatformConfig(doc, file);
}
