/**
 * Leader leases and fencing (runtime/agent/store/pg/leader-lease.ts, leader-elector.ts) against a real
 * PostgreSQL server (test/support/postgres.ts). Each contender has a pool of its own, as separate control
 * planes would; each test works in a schema of its own, dropped afterwards.
 */
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createPool } from "../../runtime/agent/store/pg/connection.ts";
import { LeaderElector } from "../../runtime/agent/store/pg/leader-elector.ts";
import { assertEpoch, LeaderLease, StaleLeaderError } from "../../runtime/agent/store/pg/leader-lease.ts";
import { migratePg } from "../../runtime/agent/store/pg/migrations.ts";
import { dropSchema, startTestPostgres, uniqueSchema, type TestPostgres } from "../support/postgres.ts";

const server = await startTestPostgres();
if ("skip" in server) console.warn(`note: PostgreSQL leader lease tests skipped: ${server.skip}`);
const pgServer: TestPostgres | undefined = "skip" in server ? undefined : server;

afterAll(async () => {
  await pgServer?.stop();
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves with the elector's epoch the next time it becomes leader. */
const nextLeadership = (elector: LeaderElector) => new Promise<number>((resolve) => elector.once("became-leader", resolve));

/** Resolves with the first of `electors` to become leader. */
const firstLeader = (electors: LeaderElector[]) =>
  Promise.race(electors.map((e) => nextLeadership(e).then((epoch) => ({ elector: e, epoch }))));

if (pgServer === undefined) {
  describe.skip("leader lease (no PostgreSQL server)", () => {
    it("needs a PostgreSQL server", () => undefined);
  });
} else {
  const url = pgServer.url;

  describe("leader lease", () => {
    let schema = "";
    const pools: pg.Pool[] = [];
    const electors: LeaderElector[] = [];

    /** A contender's own pool on the test's schema, migrated. */
    const lease = async (name = "scheduler"): Promise<LeaderLease> => {
      const pool = createPool(url, { schema, maxConnections: 2 });
      pools.push(pool);
      await migratePg(pool, schema);
      return new LeaderLease(pool, name);
    };
    const elector = async (holder: string, ttlMs: number): Promise<LeaderElector> => {
      const e = new LeaderElector(await lease(), { holder, ttlMs });
      electors.push(e);
      return e;
    };
    /** A plain connection on the schema, outside the lease module. */
    const connect = async (): Promise<pg.Client> => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`SET search_path TO ${schema}`);
      return client;
    };
    const query = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> => {
      const client = await connect();
      try {
        return (await client.query<T>(sql, params)).rows;
      } finally {
        await client.end();
      }
    };
    /** A write only the leader of `epoch` may make. */
    const fencedWrite = (l: LeaderLease, epoch: number, note: string) =>
      l.fenced(epoch, (tx) => tx.query("INSERT INTO decisions (epoch, note) VALUES ($1, $2)", [epoch, note]));

    const setup = async () => {
      schema = uniqueSchema();
      await migratePg(pools[pools.push(createPool(url, { schema, maxConnections: 1 })) - 1]!, schema);
      await query("CREATE TABLE decisions (epoch bigint NOT NULL, note text NOT NULL)");
    };

    afterEach(async () => {
      for (const e of electors.splice(0)) await e.stop({ release: false });
      for (const p of pools.splice(0)) await p.end();
      await dropSchema(url, schema);
    });

    it("hands the lease to exactly one of several contenders racing for it, fresh or expired", async () => {
      await setup();
      const contenders = await Promise.all(Array.from({ length: 6 }, () => lease()));
      const first = await Promise.all(contenders.map((l, i) => l.tryAcquire(`cp-${i}`, 300)));
      expect(first.filter((t) => t !== null).map((t) => t!.epoch)).toEqual([1]);
      await sleep(350);
      const second = await Promise.all(contenders.map((l, i) => l.tryAcquire(`cp-${i}`, 60_000)));
      expect(second.filter((t) => t !== null).map((t) => t!.epoch)).toEqual([2]);
      const holder = `cp-${second.findIndex((t) => t !== null)}`;
      expect(await contenders[0]!.state()).toMatchObject({ holder, epoch: 2, live: true });
    });

    it("lets two electors race: exactly one leads, and keeps leading while it renews", async () => {
      await setup();
      const a = await elector("cp-a", 600);
      const b = await elector("cp-b", 600);
      const lost: string[] = [];
      for (const e of [a, b]) e.on("lost-leadership", () => lost.push(e.holder));
      const won = firstLeader([a, b]);
      a.start();
      b.start();
      const { elector: leader, epoch } = await won;
      expect(epoch).toBe(1);
      // Several renewal periods later, still one leader, the same tenure.
      await sleep(1_300);
      expect([a, b].filter((e) => e.isLeader)).toEqual([leader]);
      expect(leader.epoch).toBe(1);
      expect(lost).toEqual([]);
      expect(await (await lease()).state()).toMatchObject({ holder: leader.holder, epoch: 1, live: true });
    });

    it("after a partitioned leader's TTL, another takes over with a higher epoch; the stale leader's renewal and writes are refused", async () => {
      await setup();
      const ttl = 500;
      const a = await elector("cp-a", ttl);
      const aLeads = nextLeadership(a);
      a.start();
      const oldEpoch = await aLeads;
      const b = await elector("cp-b", ttl);
      b.start();
      await sleep(ttl); // b tries and fails while a renews
      expect(b.isLeader).toBe(false);
      const observer = await lease();
      const lastExpiry = (await observer.state())!.expiresAt;

      // The partition: a's loop stops without releasing; its process still has the epoch it led with.
      await a.stop({ release: false });
      const newEpoch = await nextLeadership(b);
      expect(newEpoch).toBeGreaterThan(oldEpoch);
      // b took over only once a's tenure had expired, by the database's clock.
      const [row] = await query<{ acquired_at: Date }>("SELECT acquired_at FROM leader_lease WHERE name = 'scheduler'");
      expect(row!.acquired_at.getTime()).toBeGreaterThanOrEqual(Date.parse(lastExpiry));

      const stale = await lease();
      expect(await stale.renew("cp-a", oldEpoch, ttl)).toBe(false);
      await expect(fencedWrite(stale, oldEpoch, "stale")).rejects.toThrow(StaleLeaderError);
      await expect(fencedWrite(stale, oldEpoch, "stale")).rejects.toThrow(`epoch ${oldEpoch} no longer leads lease 'scheduler' (it is at epoch ${newEpoch} now)`);
      await fencedWrite(observer, newEpoch, "current");
      expect(await query("SELECT epoch, note FROM decisions")).toEqual([{ epoch: String(newEpoch), note: "current" }]);
      // The stale holder cannot release the new tenure either.
      expect(await stale.release("cp-a", oldEpoch)).toBe(false);
      expect(b.isLeader).toBe(true);
    });

    it("makes a takeover wait for the old leader's fenced write in flight, so that write commits within its tenure", async () => {
      await setup();
      const old = await lease();
      const next = await lease();
      const { epoch } = (await old.tryAcquire("cp-a", 200))!;
      const client = await connect();
      try {
        await client.query("BEGIN");
        await assertEpoch(client, "scheduler", epoch);
        await client.query("INSERT INTO decisions (epoch, note) VALUES ($1, 'in flight')", [epoch]);
        await sleep(300); // the tenure expires while the write is in flight
        let acquired: number | null | undefined;
        const takeover = next.tryAcquire("cp-b", 60_000).then((t) => (acquired = t?.epoch ?? null));
        await sleep(300);
        expect(acquired).toBeUndefined(); // blocked on the lease row the write holds
        await client.query("COMMIT");
        await takeover;
        expect(acquired).toBe(epoch + 1);
      } finally {
        await client.end();
      }
      expect(await query("SELECT note FROM decisions")).toEqual([{ note: "in flight" }]);
      // Now that epoch + 1 began, epoch's writes are refused, even on a plain transaction.
      const late = await connect();
      try {
        await late.query("BEGIN");
        await expect(assertEpoch(late, "scheduler", epoch)).rejects.toThrow(/it is at epoch \d+ now/);
        await late.query("ROLLBACK");
      } finally {
        await late.end();
      }
    });

    it("hands over at once on release, and refuses writes of a released or expired tenure", async () => {
      await setup();
      const a = await lease();
      const b = await lease();
      const first = (await a.tryAcquire("cp-a", 60_000))!;
      expect(await b.tryAcquire("cp-b", 60_000)).toBeNull();
      expect(await a.release("cp-a", first.epoch)).toBe(true);
      await expect(fencedWrite(a, first.epoch, "after release")).rejects.toThrow(/that tenure was released/);
      const second = (await b.tryAcquire("cp-b", 150))!;
      expect(second.epoch).toBe(first.epoch + 1);
      await sleep(200);
      await expect(fencedWrite(b, second.epoch, "after expiry")).rejects.toThrow(/that tenure expired/);
      expect(await b.renew("cp-b", second.epoch, 150)).toBe(false);
      await expect(fencedWrite(b, 99, "never held")).rejects.toThrow(StaleLeaderError);
      await expect(new LeaderLease(pools[0]!, "other").fenced(1, async () => 1)).rejects.toThrow(/nobody ever held it/);

      // Electors: stopping the leader (which releases) lets the other lead well before the TTL would.
      const ttl = 3_000;
      const x = await elector("cp-x", ttl);
      const y = await elector("cp-y", ttl);
      const won = firstLeader([x, y]);
      x.start();
      y.start();
      const { elector: leader } = await won;
      const other = leader === x ? y : x;
      const handed = nextLeadership(other);
      const stoppedAt = performance.now();
      await leader.stop();
      expect(await handed).toBe(second.epoch + 2);
      expect(performance.now() - stoppedAt).toBeLessThan(ttl / 2);
    });

    it("never repeats an epoch across 20 handovers, by release and by expiry", async () => {
      await setup();
      const ttl = 300;
      const epochs: number[] = [];
      let leader = await elector("cp-0", ttl);
      leader.on("became-leader", (e) => epochs.push(e));
      const firstLeads = nextLeadership(leader);
      leader.start();
      await firstLeads;
      for (let i = 1; i <= 20; i++) {
        const successor = await elector(`cp-${i}`, ttl);
        successor.on("became-leader", (e) => epochs.push(e));
        const takesOver = nextLeadership(successor);
        successor.start();
        await leader.stop({ release: i % 2 === 0 });
        await takesOver;
        leader = successor;
      }
      expect(epochs).toHaveLength(21);
      expect(new Set(epochs).size).toBe(21);
      expect(epochs).toEqual([...epochs].sort((x, y) => x - y));
      expect((await (await lease()).state())!.epoch).toBe(epochs[20]);
    }, 15_000);

    it("steps down within its TTL when renewals fail (the database unreachable)", async () => {
      await setup();
      const ttl = 400;
      const pool = createPool(url, { schema, maxConnections: 2 });
      const l = new LeaderLease(pool, "scheduler");
      const errors: unknown[] = [];
      const e = new LeaderElector(l, { holder: "cp-a", ttlMs: ttl, onError: (err) => errors.push(err) });
      electors.push(e);
      const leads = nextLeadership(e);
      e.start();
      const epoch = await leads;
      const lost = new Promise<{ epoch: number; reason: string; at: number }>((resolve) =>
        e.once("lost-leadership", (lostEpoch, reason) => resolve({ epoch: lostEpoch, reason, at: performance.now() }))
      );
      // Every later call of this contender fails, as when its network to the database is cut.
      const cutAt = performance.now();
      await pool.end();
      const step = await lost;
      expect(step).toMatchObject({ epoch, reason: "renewal overdue" });
      expect(step.at - cutAt).toBeLessThanOrEqual(ttl + 50);
      expect(e.isLeader).toBe(false);
      expect(errors.length).toBeGreaterThan(0);
      // Nothing was released: the tenure lapses on its own in the database, and only then can another take it.
      expect(await (await lease()).state()).toMatchObject({ holder: "cp-a", epoch });
    });

    it("gives a holder that acquires again a new epoch, fencing off its former self", async () => {
      await setup();
      const l = await lease();
      const before = (await l.tryAcquire("cp-a", 60_000))!;
      const after = (await l.tryAcquire("cp-a", 60_000))!;
      expect(after.epoch).toBe(before.epoch + 1);
      expect(await l.renew("cp-a", before.epoch, 60_000)).toBe(false);
      expect(await l.renew("cp-a", after.epoch, 60_000)).toBe(true);
    });

    it("names the field and the fix on bad arguments", async () => {
      await setup();
      const l = await lease();
      await expect(l.tryAcquire("", 1_000)).rejects.toThrow(/holder must name the contender/);
      await expect(l.tryAcquire("cp-a", 50)).rejects.toThrow(/ttlMs must be a whole number of milliseconds from 100 to 3600000 \(got 50\)/);
      await expect(l.renew("cp-a", 0, 1_000)).rejects.toThrow(/epoch must be a whole number of at least 1/);
      expect(() => new LeaderLease(pools[0]!, "")).toThrow(/lease name must be 1 to 255 characters/);
      expect(() => new LeaderElector(l, { holder: "cp-a", ttlMs: 1.5 })).toThrow(/ttlMs must be a whole number/);
    });
  });
}
