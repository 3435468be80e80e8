// Stage `render-<i>`: draws scene i of the prompt's scenes.json as fractal value noise (fBm) coloured
// with a cosine palette, and writes scene-<i>.png.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodePng } from "./png.mjs";
import { fail, inputFiles, intOption, options, outputDir } from "./stage-io.mjs";

const values = options({ scene: "which scene to render, from 1" });
const index = intOption(values, "scene", 1, 1, 64);
const sources = inputFiles("scenes.json");
if (sources.length !== 1) fail(`expected one scenes.json from the prompt stage in the inputs, found ${sources.length}`);
let scenes;
try {
  scenes = JSON.parse(readFileSync(sources[0].path, "utf8")).scenes;
} catch (err) {
  fail(`${sources[0].path} is not valid JSON: ${err.message}`);
}
const scene = Array.isArray(scenes) ? scenes.find((s) => s.index === index) : undefined;
if (!scene) fail(`--scene ${index}: the prompt wrote ${Array.isArray(scenes) ? scenes.length : 0} scenes; pick one of them`);

/** Hash of a lattice point and the seed to [0, 1). */
function lattice(x, y, seed) {
  let h = Math.imul(x, 374761393) ^ Math.imul(y, 668265263) ^ Math.imul(seed, 2147483647);
  h = Math.imul(h ^ (h >>> 13), 1274126177);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

const smooth = (t) => t * t * (3 - 2 * t);

function valueNoise(x, y, seed) {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const tx = smooth(x - x0);
  const ty = smooth(y - y0);
  const top = lattice(x0, y0, seed) * (1 - tx) + lattice(x0 + 1, y0, seed) * tx;
  const bottom = lattice(x0, y0 + 1, seed) * (1 - tx) + lattice(x0 + 1, y0 + 1, seed) * tx;
  return top * (1 - ty) + bottom * ty;
}

/** Fractal Brownian motion: octaves of noise, each twice as fine and half as strong. */
function fbm(x, y, seed, octaves) {
  let sum = 0;
  let amplitude = 0.5;
  let frequency = 1;
  for (let o = 0; o < octaves; o++) {
    sum += amplitude * valueNoise(x * frequency, y * frequency, seed + o * 1013);
    amplitude /= 2;
    frequency *= 2;
  }
  return sum / (1 - 0.5 ** octaves);
}

const { width, height, seed, octaves, zoom, palette } = scene;
const pixels = Buffer.alloc(width * height * 3);
for (let y = 0; y < height; y++) {
  for (let x = 0; x < width; x++) {
    const u = (x / width) * zoom;
    const v = (y / height) * zoom * (height / width);
    // Domain warping: noise displaced by noise gives the plasma-like swirls.
    const warp = fbm(u + 3.1, v + 7.7, seed + 1, octaves);
    const t = fbm(u + 2 * warp, v + 2 * warp, seed, octaves);
    for (let c = 0; c < 3; c++) {
      const value = 0.5 + 0.5 * Math.cos(2 * Math.PI * (t * 1.5 + palette[c]));
      pixels[(y * width + x) * 3 + c] = Math.round(value * 255);
    }
  }
}
const file = `scene-${index}.png`;
writeFileSync(join(outputDir(), file), encodePng(width, height, pixels));
process.stdout.write(`rendered '${scene.title}' as ${file} (${width}x${height})\n`);
