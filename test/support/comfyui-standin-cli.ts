/**
 * The stand-in ComfyUI server as a program, so that tests can have the agent START it as its
 * `comfyui.command` (a server per GPU, restarted when it exits), as it would start ComfyUI's main.py:
 *
 *   node --import tsx test/support/comfyui-standin-cli.ts --port {port} --gpu {gpu}
 *        [--node-delay-ms N] [--start-delay-ms N] [--crash-once-file F] [--record-file F]
 *        [--fail-class C --fail-type T --fail-message M]
 *
 * --crash-once-file F: the first prompt to start while F does not exist creates F and kills the
 *   process (exit code 3) a moment later, mid-prompt; later starts (F exists) run normally.
 * --record-file F: appends a line per start ("start gpu=N port=P") to F.
 * --fail-class C: the first node of class C raises T (e.g. torch.OutOfMemoryError) with message M.
 * The process ends when its stdin closes (the agent that started it is gone) or on SIGTERM.
 */
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { startComfyStandin } from "./comfyui-standin.ts";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}
const num = (name: string): number | undefined => (arg(name) === undefined ? undefined : Number(arg(name)));

const port = num("port");
if (port === undefined || !Number.isInteger(port)) {
  process.stderr.write("--port is required\n");
  process.exit(2);
}
const crashFile = arg("crash-once-file");
const record = arg("record-file");
if (record) appendFileSync(record, `start gpu=${arg("gpu") ?? "?"} port=${port}\n`);

const standin = await startComfyStandin({
  port,
  ...(num("node-delay-ms") !== undefined && { nodeDelayMs: num("node-delay-ms") }),
  ...(num("start-delay-ms") !== undefined && { startDelayMs: num("start-delay-ms") }),
  ...(arg("fail-class") !== undefined && {
    failNode: { class_type: arg("fail-class")!, exception_type: arg("fail-type") ?? "RuntimeError", message: arg("fail-message") ?? "stand-in failure" },
  }),
  onPromptStart: () => {
    if (crashFile === undefined || existsSync(crashFile)) return;
    writeFileSync(crashFile, `crashed on gpu ${arg("gpu") ?? "?"}\n`);
    process.stderr.write("stand-in: crashing mid-prompt\n");
    setTimeout(() => process.exit(3), 50);
  },
});
await standin.ready;
process.stdout.write(`stand-in ComfyUI listening on ${standin.url}\n`);

const stop = () => void standin.close().finally(() => process.exit(0));
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
