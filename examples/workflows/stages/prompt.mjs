// Stage `prompt`: writes scenes.json, the descriptions the render stages draw (title, seed, size,
// palette, detail). Titles come from --titles or are made up from the seed. The run's inputs
// (run-inputs.json) may override both: { "seed": 42, "titles": ["harbor at dawn"] }.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fail, intOption, options, outputDir, runInputs } from "./stage-io.mjs";

const values = options({ scenes: "how many scenes, 1-64", seed: "base seed", width: "image width, 16-2048", height: "image height, 16-2048", titles: "comma-separated titles" });
const count = intOption(values, "scenes", 4, 1, 64);
const width = intOption(values, "width", 256, 16, 2048);
const height = intOption(values, "height", 192, 16, 2048);
const given = runInputs();
if (given.seed !== undefined && !(Number.isInteger(given.seed) && given.seed >= 0 && given.seed <= 2 ** 31 - 1)) {
  fail(`run input 'seed' is ${JSON.stringify(given.seed)}: must be a whole number from 0 to ${2 ** 31 - 1}`);
}
if (given.titles !== undefined && !(Array.isArray(given.titles) && given.titles.every((t) => typeof t === "string"))) {
  fail(`run input 'titles' must be a list of strings, e.g. ["harbor at dawn"]`);
}
const seed = given.seed ?? intOption(values, "seed", 1, 0, 2 ** 31 - 1);
const titles = given.titles ?? (values.titles === undefined ? [] : values.titles.split(","));
const source = given.titles ? "run input 'titles'" : "--titles";
if (titles.some((t) => t.trim().length === 0 || t.trim().length > 80)) fail(`${source} must be titles of 1 to 80 characters`);
if (titles.length > count) fail(`${source} names ${titles.length} scenes but --scenes is ${count}`);

const MOODS = ["misty", "molten", "frozen", "electric", "sunken", "drifting", "ancient", "neon"];
const PLACES = ["harbor", "canyon", "nebula", "forest", "reef", "citadel", "dune sea", "aurora"];

/** mulberry32: a small seeded generator, so the same seed always gives the same scenes. */
function random(seedValue) {
  let a = seedValue >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const next = random(seed);
const scenes = Array.from({ length: count }, (_, i) => {
  const title = titles[i]?.trim() ?? `${MOODS[Math.floor(next() * MOODS.length)]} ${PLACES[Math.floor(next() * PLACES.length)]}`;
  return {
    index: i + 1,
    title,
    seed: Math.floor(next() * 2 ** 31),
    width,
    height,
    // Cosine palette phases (one per channel) and how many noise octaves give the detail.
    palette: [next(), next(), next()].map((p) => Math.round(p * 1000) / 1000),
    octaves: 3 + Math.floor(next() * 4),
    zoom: Math.round((1.5 + next() * 3) * 100) / 100,
  };
});
writeFileSync(join(outputDir(), "scenes.json"), `${JSON.stringify({ seed, scenes }, null, 2)}\n`);
process.stdout.write(`wrote ${scenes.length} scenes: ${scenes.map((s) => s.title).join(", ")}\n`);
