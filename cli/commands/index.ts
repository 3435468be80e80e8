import type { Command } from "commander";
import { register as agent } from "./agent.ts";
import { register as audit } from "./audit.ts";
import { register as check } from "./check.ts";
import { register as dev } from "./dev.ts";
import { register as keys } from "./keys.ts";
import { register as plan } from "./plan.ts";
import { register as simulate } from "./simulate.ts";
import { register as synth } from "./synth.ts";
import { register as tokens } from "./tokens.ts";
import { register as validate } from "./validate.ts";

/** Every verb of the CLI registers itself here, one module per verb. */
export const commands: ReadonlyArray<(program: Command) => void> = [synth, validate, check, simulate, plan, keys, tokens, audit, agent, dev];
