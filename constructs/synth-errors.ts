/**
 * Construct and synth errors as a person reads them: the problems and their fixes, without the Node stack
 * trace they would otherwise come wrapped in, and with a way to write the output anyway that matches how the
 * app is run (cdktf's own hint names `skipValidation: true` in the App's config, whatever the app accepts).
 */

/** What cdktf appends to a failed validation (stack-level and app-level wordings). */
const CDKTF_SKIP_HINTS = [
  /\n*If you wish to ignore these validations, pass 'skipValidation: true' to your App configuration\.\s*/,
  /\n*To skip validations, add 'skipValidation: true' to your App config\.\s*/,
];
const CDKTF_VALIDATION = /^(App-level validation|Validation) failed with the following errors:/;
/** When the app says nothing of its own: cdktf's option, named as it is written in the App's constructor. */
export const DEFAULT_SKIP_HINT = "to write the output anyway, construct the App with `new App({ skipValidation: true })`";

export interface SynthErrorOptions {
  /** How this app writes its output despite failed validations, e.g. "run it again with --skip-validation". */
  readonly skipValidationHint?: string;
}

/**
 * The text to show for a construct's props error (a ValidationError, as PropIssues throws) or a failed cdktf
 * validation (compliance findings); undefined for any other error, which keeps its stack (it is a bug).
 */
export function describeSynthError(err: unknown, options: SynthErrorOptions = {}): string | undefined {
  if (!(err instanceof Error)) return undefined;
  if (err.name === "ValidationError" && Array.isArray((err as { issues?: unknown }).issues)) return err.message;
  if (CDKTF_VALIDATION.test(err.message)) return rewriteSkipHint(err.message, options.skipValidationHint);
  return undefined;
}

/** Replaces cdktf's "pass 'skipValidation: true'" with the app's own way (or the App option, named as code). */
export function rewriteSkipHint(text: string, hint = DEFAULT_SKIP_HINT): string {
  let out = text;
  for (const pattern of CDKTF_SKIP_HINTS) out = out.replace(pattern, `\n\nFix the findings above, or ${hint}.\n`);
  return out.trimEnd();
}

/**
 * Runs a cdktf app's definition and synth (`() => { const app = new App(); define(app); app.synth(); }`). A
 * props error or failed validation is printed to stderr without a stack and ends the process with exit code 1;
 * any other error is thrown on as it is.
 */
export function runSynth(synthesize: () => void, options: SynthErrorOptions = {}): void {
  try {
    synthesize();
  } catch (err) {
    const text = describeSynthError(err, options);
    if (text === undefined) throw err;
    process.stderr.write(`${text}\n`);
    process.exitCode = 1;
  }
}
