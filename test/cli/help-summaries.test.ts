import { Command } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import { registerSummaries, registrationsFor, verbSummaries, VERBS } from "../../cli/commands/index.ts";

const programWith = async (argv: string[], summaries?: Awaited<ReturnType<typeof verbSummaries>>) => {
  const program = new Command("gpufabric").exitOverride();
  for (const register of await registrationsFor(["node", "gpufabric", ...argv], summaries)) register(program);
  return program;
};

describe("gpufabric --help from the verbs' summaries (what the build records)", () => {
  afterEach(() => vi.restoreAllMocks());

  it("reads exactly as the help of the registered verbs", async () => {
    const full = new Command("gpufabric");
    for (const v of VERBS) (await v.load()).register(full);
    const summarized = new Command("gpufabric");
    registerSummaries(await verbSummaries())(summarized);
    expect(summarized.helpInformation()).toBe(full.helpInformation());
    expect(summarized.helpInformation()).toContain("check [options] <path>");
  });

  it("imports no verb for help, no verb or a typo, and only the named verb otherwise (also as `help VERB`)", async () => {
    const summaries = await verbSummaries();
    const loads = VERBS.map((v) => vi.spyOn(v, "load"));
    const loaded = () => VERBS.filter((_, i) => loads[i]!.mock.calls.length > 0).map((v) => v.name);

    for (const argv of [["--help"], [], ["chek"]]) {
      const program = await programWith(argv, summaries);
      expect(program.commands.map((c) => c.name())).toEqual(VERBS.map((v) => v.name));
    }
    expect(loaded()).toEqual([]);

    await programWith(["help", "check"], summaries);
    expect(loaded()).toEqual(["check"]);
  });

  it("suggests the verb meant by a typo from the summaries alone", async () => {
    const program = await programWith(["chek"], await verbSummaries());
    let stderr = "";
    program.configureOutput({ writeErr: (s) => (stderr += s) });
    await expect(program.parseAsync(["node", "gpufabric", "chek"])).rejects.toThrow();
    expect(stderr).toContain("Did you mean check?");
  });
});
