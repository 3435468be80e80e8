// Stage `upscale-<i>`: enlarges every PNG from the stages it needs by --factor with bilinear
// interpolation and writes them under the same names.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodePng, encodePng } from "./png.mjs";
import { fail, inputFiles, intOption, options, outputDir } from "./stage-io.mjs";

const values = options({ factor: "scale factor, 1-8" });
const factor = intOption(values, "factor", 2, 1, 8);
const images = inputFiles(".png");
if (images.length === 0) fail("no PNG images in the inputs: this stage needs a stage that writes PNGs");

function upscale({ width, height, pixels }) {
  const w = width * factor;
  const h = height * factor;
  const out = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    // Sample at pixel centres so the image does not shift by half a pixel.
    const sy = Math.min(Math.max((y + 0.5) / factor - 0.5, 0), height - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, height - 1);
    const fy = sy - y0;
    for (let x = 0; x < w; x++) {
      const sx = Math.min(Math.max((x + 0.5) / factor - 0.5, 0), width - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, width - 1);
      const fx = sx - x0;
      for (let c = 0; c < 3; c++) {
        const p = (xx, yy) => pixels[(yy * width + xx) * 3 + c];
        const top = p(x0, y0) * (1 - fx) + p(x1, y0) * fx;
        const bottom = p(x0, y1) * (1 - fx) + p(x1, y1) * fx;
        out[(y * w + x) * 3 + c] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return { width: w, height: h, pixels: out };
}

for (const image of images) {
  let decoded;
  try {
    decoded = decodePng(readFileSync(image.path));
  } catch (err) {
    fail(`${image.stage}/${image.file}: ${err.message}`);
  }
  const big = upscale(decoded);
  writeFileSync(join(outputDir(), image.file), encodePng(big.width, big.height, big.pixels));
  process.stdout.write(`upscaled ${image.stage}/${image.file} to ${big.width}x${big.height}\n`);
}
