/**
 * The local scaler's choices with a stand-in launcher (the live test runs it over real worker processes):
 * scale-up fills free slots and counts starting workers at once, never beyond the slots; scale-down sends
 * SIGTERM to a starting worker first, then the idle one idle longest, and a busy one last; a worker stopped
 * while it starts gets SIGTERM once it is up; a slot is free again once its process exited; close stops
 * the rest at once (SIGINT).
 */
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { LocalScaler, type LocalWorkerLauncher } from "../../../runtime/agent/cluster/elastic/local-scaler.ts";

class StandIn implements LocalWorkerLauncher {
  readonly signals: Array<[string, NodeJS.Signals]> = [];
  private readonly ups = new Map<number, () => void>();
  private readonly exits = new Map<number, (code: number) => void>();
  constructor(readonly slots: number) {}
  startWorker(slot: number) {
    return new Promise<{ info: { pid: number }; exited: Promise<number | null> }>((resolve) => {
      const exited = new Promise<number | null>((r) => this.exits.set(slot, r));
      this.ups.set(slot, () => resolve({ info: { pid: 1000 + slot }, exited }));
    });
  }
  signal(name: string, signal: NodeJS.Signals): void {
    this.signals.push([name, signal]);
  }
  up(slot: number): void {
    this.ups.get(slot)!();
  }
  exit(slot: number, code = 0): void {
    this.exits.get(slot)!(code);
  }
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("the local scaler", () => {
  it("starts workers in free slots up to the slots, and stops starting, then idle, then busy ones", async () => {
    const launcher = new StandIn(3);
    const busy = new Set<string>();
    const scaler = new LocalScaler({ launcher, pool: "p", nodeOf: (i) => `p-n${i}`, busy: (n) => busy.has(n), logger: pino({ level: "silent" }) });
    await scaler.scaleTo("p", 5);
    expect(scaler.states()).toEqual(["starting", "starting", "starting"]);
    expect(await scaler.current("p")).toBe(3);
    // Asking again for what it already has starts nothing more.
    await scaler.scaleTo("p", 3);
    expect(scaler.history.filter((h) => h.what === "start")).toHaveLength(3);

    launcher.up(0);
    launcher.up(2);
    await tick();
    expect(scaler.states()).toEqual(["up", "starting", "up"]);
    busy.add("p-n0");
    // One fewer: the starting worker goes (it holds nothing); its SIGTERM waits until it is up.
    await scaler.scaleTo("p", 2);
    expect(scaler.states()).toEqual(["up", "draining", "up"]);
    expect(launcher.signals).toEqual([]);
    launcher.up(1);
    await tick();
    expect(launcher.signals).toEqual([["worker-1", "SIGTERM"]]);
    // One fewer again: the idle worker, not the busy one.
    await scaler.scaleTo("p", 1);
    expect(launcher.signals.at(-1)).toEqual(["worker-2", "SIGTERM"]);
    expect(await scaler.current("p")).toBe(1);
    // Down to zero: the busy one drains too (its stage finishes before it exits).
    await scaler.scaleTo("p", 0);
    expect(launcher.signals.at(-1)).toEqual(["worker-0", "SIGTERM"]);
    expect(await scaler.current("p")).toBe(0);

    // Slots free up as processes exit; a later scale-up uses them again.
    launcher.exit(1);
    launcher.exit(2);
    await tick();
    expect(scaler.states()).toEqual(["draining", "free", "free"]);
    await scaler.scaleTo("p", 1);
    expect(scaler.states()).toEqual(["draining", "starting", "free"]);
    expect(scaler.history.filter((h) => h.what === "exit").map((h) => h.code)).toEqual([0, 0]);
  });

  it("refuses another pool and a count that is not a whole number, and stops what runs on close", async () => {
    const launcher = new StandIn(2);
    const scaler = new LocalScaler({ launcher, pool: "p", nodeOf: (i) => `p-n${i}`, logger: pino({ level: "silent" }) });
    await expect(scaler.scaleTo("q", 1)).rejects.toThrow(/serves pool 'p', not 'q'/);
    await expect(scaler.scaleTo("p", 1.5)).rejects.toThrow(/whole number/);
    await scaler.scaleTo("p", 1);
    launcher.up(0);
    await tick();
    const closing = scaler.close();
    await tick();
    expect(launcher.signals).toEqual([["worker-0", "SIGINT"]]);
    launcher.exit(0);
    await closing;
    await scaler.scaleTo("p", 2);
    expect(scaler.states()).toEqual(["free", "free"]);
  });
});
