/** Free loopback ports for servers a test binds itself (a port range must be known before they listen). */
import { createServer } from "node:net";

/** The first of `count` consecutive loopback ports on which nothing listens now. */
export async function freePorts(count: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
  for (let i = 0; i < 50; i++) {
    const from = 20_000 + Math.floor(Math.random() * 30_000);
    const all = await Promise.all(Array.from({ length: count }, (_, k) => free(from + k)));
    if (all.every(Boolean)) return from;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}
