#!/usr/bin/env node
// Entry point of the `gpufabric` CLI: registers tsx so the TypeScript sources run as they are.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/index.ts");
await main(process.argv);
