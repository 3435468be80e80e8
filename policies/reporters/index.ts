import type { Report } from "../model.ts";
import { renderJson } from "./json.ts";
import { renderJunit } from "./junit.ts";
import { renderMarkdown } from "./markdown.ts";
import { renderSarif } from "./sarif.ts";
import { renderText } from "./text.ts";
import type { Format } from "./formats.ts";

export { FORMATS, type Format } from "./formats.ts";

export function render(report: Report, format: Format, version: string): string {
  switch (format) {
    case "text":
      return renderText(report);
    case "json":
      return renderJson(report);
    case "sarif":
      return renderSarif(report, version);
    case "markdown":
      return renderMarkdown(report);
    case "junit":
      return renderJunit(report);
  }
}

export { renderJson, renderJunit, renderMarkdown, renderSarif, renderText };
