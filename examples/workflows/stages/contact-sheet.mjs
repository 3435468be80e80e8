// Stage `contact-sheet`: lays every PNG from the stages it needs out on one grid and writes
// contact-sheet.png (and contact-sheet.json, where each image landed).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodePng, encodePng } from "./png.mjs";
import { fail, inputFiles, intOption, options, outputDir } from "./stage-io.mjs";

const values = options({ columns: "images per row, 1-64 (default: a square-ish grid)", margin: "pixels between images, 0-256" });
const images = inputFiles(".png").map((image) => {
  try {
    return { ...image, ...decodePng(readFileSync(image.path)) };
  } catch (err) {
    fail(`${image.stage}/${image.file}: ${err.message}`);
  }
});
if (images.length === 0) fail("no PNG images in the inputs: this stage needs stages that write PNGs");
const columns = intOption(values, "columns", Math.ceil(Math.sqrt(images.length)), 1, 64);
const margin = intOption(values, "margin", 8, 0, 256);
const rows = Math.ceil(images.length / columns);
const cellWidth = Math.max(...images.map((i) => i.width));
const cellHeight = Math.max(...images.map((i) => i.height));
const width = margin + columns * (cellWidth + margin);
const height = margin + rows * (cellHeight + margin);
if (width * height > 64 * 1024 * 1024) fail(`the sheet would be ${width}x${height} pixels: use fewer or smaller images`);

const sheet = Buffer.alloc(width * height * 3, 0x20); // dark grey background
const layout = images.map((image, n) => {
  // Centre each image in its cell.
  const left = margin + (n % columns) * (cellWidth + margin) + Math.floor((cellWidth - image.width) / 2);
  const top = margin + Math.floor(n / columns) * (cellHeight + margin) + Math.floor((cellHeight - image.height) / 2);
  for (let y = 0; y < image.height; y++) {
    image.pixels.copy(sheet, ((top + y) * width + left) * 3, y * image.width * 3, (y + 1) * image.width * 3);
  }
  return { stage: image.stage, file: image.file, left, top, width: image.width, height: image.height };
});
writeFileSync(join(outputDir(), "contact-sheet.png"), encodePng(width, height, sheet));
writeFileSync(join(outputDir(), "contact-sheet.json"), `${JSON.stringify({ width, height, columns, rows, images: layout }, null, 2)}\n`);
process.stdout.write(`contact sheet of ${images.length} images: ${width}x${height}\n`);
