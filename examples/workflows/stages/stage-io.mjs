// What every example stage shares: arguments, the input and output folders gpufabric gives a stage,
// and failing with a clear message.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

/** Ends the stage with a message on stderr; exit code 2 for bad input, as the CLI does. */
export function fail(message, code = 2) {
  process.stderr.write(`${process.argv[1]?.split("/").pop() ?? "stage"}: ${message}\n`);
  process.exit(code);
}

/** Parses `--name value` options; every option is declared as a string and converted by the caller. */
export function options(spec) {
  try {
    return parseArgs({ options: Object.fromEntries(Object.keys(spec).map((k) => [k, { type: "string" }])), allowPositionals: false }).values;
  } catch (err) {
    fail(`${err.message}; options: ${Object.keys(spec).map((k) => `--${k} (${spec[k]})`).join(", ")}`);
  }
}

/** An integer option within bounds, or its default. */
export function intOption(values, name, fallback, min, max) {
  const text = values[name];
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} is '${text}': must be a whole number from ${min} to ${max}`);
  return n;
}

/** The folder the stage writes its outputs to ($GPUFABRIC_OUTPUT_DIR). */
export function outputDir() {
  const dir = process.env.GPUFABRIC_OUTPUT_DIR;
  if (!dir) fail("GPUFABRIC_OUTPUT_DIR is not set: gpufabric sets it to the folder for this stage's outputs");
  if (!existsSync(dir)) fail(`GPUFABRIC_OUTPUT_DIR '${dir}' does not exist`);
  return dir;
}

/** The folder holding the outputs of the stages this one needs, one subfolder each ($GPUFABRIC_INPUT_DIR). */
export function inputDir() {
  const dir = process.env.GPUFABRIC_INPUT_DIR;
  if (!dir) fail("GPUFABRIC_INPUT_DIR is not set: gpufabric sets it to the folder with the outputs of the stages this one needs");
  if (!existsSync(dir)) fail(`GPUFABRIC_INPUT_DIR '${dir}' does not exist`);
  return dir;
}

/**
 * The run's inputs: the `inputs` object the run was submitted with, which gpufabric gives every stage as
 * $GPUFABRIC_INPUT_DIR/run-inputs.json. An empty object when run by hand without one.
 */
export function runInputs() {
  const dir = process.env.GPUFABRIC_INPUT_DIR;
  const file = dir ? join(dir, "run-inputs.json") : undefined;
  if (file === undefined || !existsSync(file)) return {};
  try {
    const value = JSON.parse(readFileSync(file, "utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? value : {};
  } catch (err) {
    fail(`run-inputs.json could not be read: ${err.message}`);
  }
}

const natural = new Intl.Collator("en", { numeric: true });

/** Files ending in `extension` in every input subfolder, as { stage, file, path }, in a stable order. */
export function inputFiles(extension) {
  const dir = inputDir();
  const found = [];
  for (const stage of readdirSync(dir).sort(natural.compare)) {
    const stageDir = join(dir, stage);
    if (!statSync(stageDir).isDirectory()) continue;
    for (const file of readdirSync(stageDir).sort(natural.compare)) {
      if (file.endsWith(extension)) found.push({ stage, file, path: join(stageDir, file) });
    }
  }
  return found;
}
