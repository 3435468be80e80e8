import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { registrationsFor, VERBS } from "../../cli/commands/index.ts";

const namesFor = async (...args: string[]) => {
  const program = new Command("gpufabric");
  for (const register of await registrationsFor(["node", "gpufabric", ...args])) register(program);
  return program.commands.map((c) => c.name());
};

describe("CLI verbs loaded on demand", () => {
  it("registers only the verb a command line names", async () => {
    expect(await namesFor("check", "cdktf.out", "--format", "sarif")).toEqual(["check"]);
    expect(await namesFor("simulate", "--workload", "scale")).toEqual(["simulate"]);
  });

  it("registers every verb, in help order, for help, no verb or an unknown one (so typos get a suggestion)", async () => {
    const all = VERBS.map((v) => v.name);
    expect(await namesFor("--help")).toEqual(all);
    expect(await namesFor()).toEqual(all);
    expect(await namesFor("chek")).toEqual(all);
  });
});
