/** Writes docs/policies.md (run with `npm run docs:policies`). */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderPolicyDocs } from "./docs.ts";

const target = fileURLToPath(new URL("../docs/policies.md", import.meta.url));
writeFileSync(target, renderPolicyDocs());
process.stdout.write(`wrote ${target}\n`);
