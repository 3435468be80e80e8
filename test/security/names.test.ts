import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { existsSync, linkSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { constants } from "node:fs";
import { tmpdir } from "node:os";
import path, { join } from "node:path";
import { ValidationError } from "../../runtime/config/errors.ts";
import { UnsafePathError, checkName, openInside, resolveInside, safeName, segmentProblem } from "../../runtime/security/names/index.ts";

/** Strings built from the pieces path attacks are made of, so the properties meet them often. */
const PIECES = [
  "..", ".", "/", "\\", "a", "b.png", "é", "e\u0301", "\u202e", "\u2066", "\u200b", "\ufeff", "\uff0f", "\uff3c", "\uff0e", "\ufe68",
  "C:", "c:\\", "con", "NUL", "com1", "lpt9", " ", "\u0000", "\n", "\t", "\u0085", "~", "%2e%2e", "\u2215", "*", "?", "|", "<", ":", "\ud800", "\udc00x",
];
const attackName = fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 6 }).map((parts) => parts.join(""));
const anyName = fc.oneof(attackName, fc.string({ unit: "binary", maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 40 }));

describe("segmentProblem and checkName", () => {
  const refused: Array<[string, unknown, RegExp]> = [
    ["a non-string", 42, /must be a string/],
    ["empty", "", /is empty/],
    ["dot-dot", "..", /names a directory/],
    ["dot", ".", /names a directory/],
    ["a POSIX path", "a/b", /path separator/],
    ["an absolute path", "/etc/passwd", /path separator/],
    ["a Windows path", "..\\windows", /path separator/],
    ["a UNC path", "\\\\server\\share", /path separator/],
    ["a drive letter", "C:", /Windows forbids .*drive letters/],
    ["a drive-relative name", "c:evil", /Windows forbids/],
    ["an NTFS stream", "file.txt:$DATA", /Windows forbids/],
    ["a device name", "CON", /reserved Windows device name/],
    ["a device name with an extension", "nul.txt", /reserved Windows device name/],
    ["a superscript COM port", "COM¹.log", /reserved Windows device name/],
    ["a trailing dot", "report.", /ends with '.'/],
    ["a trailing space", "report ", /ends with '.' or a space/],
    ["a hidden name", ".env", /starts with '.'/],
    ["NUL", "a\u0000b", /NUL/],
    ["a newline", "a\nb", /control character/],
    ["a C1 control", "a\u0085b", /control character/],
    ["a right-to-left override", "invoice\u202Efdp.exe", /invisible formatting character/],
    ["a zero-width space", "a\u200Bb", /invisible formatting character/],
    ["a BOM", "\uFEFFname", /invisible formatting character/],
    ["a fullwidth solidus", "a\uFF0Fb", /path separator \(after folding look-alike characters\)/],
    ["fullwidth dots", "\uFF0E\uFF0E", /is '\.\.' \(after folding look-alike characters\), which names a directory/],
    ["a small reverse solidus", "a\uFE68b", /path separator \(after folding/],
    ["a lone surrogate", "a\uD800", /not valid Unicode/],
    ["an over-long name", "x".repeat(256), /at most 255 bytes/],
    ["an over-long name in bytes", "é".repeat(128), /256 bytes long/],
  ];
  it.each(refused)("refuses %s", (_, value, problem) => {
    expect(segmentProblem(value)).toMatch(problem);
    expect(checkName("artifact", value)).toMatchObject({ ok: false, problem: expect.stringMatching(problem) });
  });

  it("accepts ordinary names and returns their NFC form", () => {
    expect(checkName("artifact", "image-0001.png")).toEqual({ ok: true, name: "image-0001.png" });
    expect(checkName("artifact", "re\u0301sume\u0301 final.txt")).toEqual({ ok: true, name: "r\u00e9sum\u00e9 final.txt" });
    expect(checkName("artifact", "日本語の画像.webp")).toMatchObject({ ok: true });
    expect(checkName("artifact", "a..b")).toMatchObject({ ok: true });
    expect(checkName("artifact", "console.log")).toMatchObject({ ok: true });
    expect(checkName("run", "3f2b8c1e-9a4d-4c7e-8f00-1b2c3d4e5f60")).toMatchObject({ ok: true });
    expect(checkName("stage", "KSampler-3")).toMatchObject({ ok: true });
    expect(checkName("workflow", "sdxl-portrait")).toMatchObject({ ok: true });
    expect(checkName("idempotencyKey", "req_01HZX3K9V1~ab=")).toMatchObject({ ok: true });
  });

  it("holds each kind to its own shape", () => {
    expect(checkName("run", "résumé")).toMatchObject({ ok: false, problem: expect.stringMatching(/not a valid run id: use letters, digits/) });
    expect(checkName("stage", "-x")).toMatchObject({ ok: false });
    expect(checkName("stage", "x".repeat(129))).toMatchObject({ ok: false, problem: expect.stringMatching(/at most 128 bytes/) });
    expect(checkName("workflow", "SDXL")).toMatchObject({ ok: false, problem: expect.stringMatching(/workflow's name from the platform config/) });
    expect(checkName("idempotencyKey", "has space")).toMatchObject({ ok: false });
    expect(checkName("idempotencyKey", "a/b")).toMatchObject({ ok: false, problem: expect.stringMatching(/path separator/) });
  });

  it("safeName throws naming the field, with invisible characters shown escaped", () => {
    expect(safeName("artifact", "e\u0301.png", "outputs[0].name")).toBe("\u00e9.png");
    let error: unknown;
    try {
      safeName("artifact", "x\u202Egnp.exe", "outputs[2].name");
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues).toEqual([
      { field: "outputs[2].name", message: 'artifact name "x\\u202egnp.exe" contains an invisible formatting character (bidi control, zero-width space...): remove it' },
    ]);
  });

  it("property: an accepted name is exactly one child of the base, on POSIX and on Windows", () => {
    let accepted = 0;
    fc.assert(
      fc.property(anyName, (value) => {
        const result = checkName("artifact", value);
        if (!result.ok) return;
        accepted++;
        for (const [p, base] of [[path.posix, "/srv/base"], [path.win32, "C:\\srv\\base"]] as const) {
          const resolved = p.resolve(base, result.name);
          expect(p.dirname(resolved)).toBe(base);
          expect(p.basename(resolved)).toBe(result.name);
        }
        expect(result.name).toBe(result.name.normalize("NFC"));
      }),
      { numRuns: 10_000 },
    );
    // The generators must reach both sides: a property over refused names only would prove nothing.
    expect(accepted).toBeGreaterThan(1_000);
  });

  it("property: every kind accepts only names the path-safety rules accept", () => {
    fc.assert(
      fc.property(anyName, fc.constantFrom("artifact", "stage", "run", "workflow", "idempotencyKey") as fc.Arbitrary<Parameters<typeof checkName>[0]>, (value, kind) => {
        if (checkName(kind, value).ok) expect(segmentProblem(value)).toBeUndefined();
      }),
      { numRuns: 5_000 },
    );
  });
});

describe("resolveInside on a real directory", () => {
  let root: string;
  let base: string;
  let outside: string;

  beforeAll(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), "gf-names-")));
    base = join(root, "data");
    outside = join(root, "outside");
    mkdirSync(join(base, "runs", "r1"), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(outside, "secret.txt"), "top secret");
    writeFileSync(join(base, "runs", "r1", "out.png"), "png");
    // The attacks: links in the base pointing outside it, or at files inside it.
    symlinkSync(outside, join(base, "runs", "escape"));
    symlinkSync(join(outside, "secret.txt"), join(base, "runs", "r1", "secret-link.png"));
    symlinkSync("out.png", join(base, "runs", "r1", "inner-link.png"));
    symlinkSync("../../outside", join(base, "relative-escape"));
    linkSync(join(outside, "secret.txt"), join(base, "runs", "r1", "hard.png"));
    writeFileSync(join(base, "runs", "file"), "not a dir");
    // A base reached through a link is the operator's choice and is followed.
    symlinkSync(base, join(root, "data-link"));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("resolves safe names below the base, existing or not", async () => {
    expect(await resolveInside(base, ["runs", "r1", "out.png"])).toBe(join(base, "runs", "r1", "out.png"));
    expect(await resolveInside(base, ["runs", "r2", "new.png"])).toBe(join(base, "runs", "r2", "new.png"));
    expect(await resolveInside(join(root, "data-link"), ["runs", "r1", "out.png"])).toBe(join(base, "runs", "r1", "out.png"));
  });

  const attacks: Array<[string, string[], string]> = [
    ["a symlinked directory leading outside", ["runs", "escape", "secret.txt"], "symlink"],
    ["a symlink as the final name", ["runs", "escape"], "symlink"],
    ["a relative symlink climbing out", ["relative-escape", "secret.txt"], "symlink"],
    ["a symlink to a file outside", ["runs", "r1", "secret-link.png"], "symlink"],
    ["a symlink to a file inside", ["runs", "r1", "inner-link.png"], "symlink"],
    ["a file used as a directory", ["runs", "file", "x"], "not-a-directory"],
    ["dot-dot", ["runs", "..", "..", "outside", "secret.txt"], "bad-name"],
    ["an absolute path", ["/etc/passwd"], "bad-name"],
    ["a nested path in one segment", ["runs/r1/out.png"], "bad-name"],
    ["no name", [], "bad-name"],
  ];
  it.each(attacks)("refuses %s", async (_, names, reason) => {
    const refusal = resolveInside(base, names);
    await expect(refusal).rejects.toBeInstanceOf(UnsafePathError);
    await expect(refusal).rejects.toMatchObject({ reason, status: reason === "bad-name" ? 400 : 404 });
  });

  it("openInside reads regular files and refuses links, hard links and directories", async () => {
    const handle = await openInside(base, ["runs", "r1", "out.png"]);
    try {
      expect(await handle.readFile("utf8")).toBe("png");
    } finally {
      await handle.close();
    }
    await expect(openInside(base, ["runs", "r1", "secret-link.png"])).rejects.toMatchObject({ reason: "symlink" });
    await expect(openInside(base, ["runs", "r1", "hard.png"])).rejects.toMatchObject({ reason: "hard-link" });
    await expect(openInside(base, ["runs", "r1"])).rejects.toMatchObject({ reason: "not-a-file" });
    const created = await openInside(base, ["runs", "r1", "made.txt"], constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
    await created.writeFile("ok");
    await created.close();
    expect(await readFile(join(base, "runs", "r1", "made.txt"), "utf8")).toBe("ok");
    expect(await readFile(join(outside, "secret.txt"), "utf8")).toBe("top secret");
  });

  it("property: no accepted name resolves outside the base, even beside escaping links", async () => {
    let resolvedCount = 0;
    const linkNames = fc.constantFrom("escape", "r1", "file", "..", "r1/out.png");
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(anyName, linkNames), { minLength: 1, maxLength: 3 }), async (names) => {
        let resolved: string;
        try {
          resolved = await resolveInside(join(base, "runs"), names);
        } catch (err) {
          expect(err).toBeInstanceOf(UnsafePathError);
          return;
        }
        resolvedCount++;
        // What the kernel would reach: the real path of the deepest existing part stays inside too.
        let existing = resolved;
        while (!existsSync(existing)) existing = path.dirname(existing);
        expect(realpathSync(existing).startsWith(join(base, "runs"))).toBe(true);
        if (names[0] === "escape") throw new Error("a name through the escaping link was accepted");
        expect(resolved.startsWith(join(base, "runs") + path.sep)).toBe(true);
        expect(path.relative(join(base, "runs"), resolved).split(path.sep)).toHaveLength(names.length);
      }),
      { numRuns: 2_000 },
    );
    expect(resolvedCount).toBeGreaterThan(100);
  });
});
