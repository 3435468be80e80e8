import { parse as parseYaml } from "yaml";
import { bool, get, isObj } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Outcome, type Rule } from "../model.ts";
import { controls } from "./support.ts";

export const timeSlicingFailMultiRequests: Rule = {
  id: "GF-GPU-007",
  name: "time-slicing-fail-multi-requests",
  level: "warning",
  title: "Time-sliced GPUs refuse requests for more than one replica",
  rationale:
    "Under time-slicing a request for 2 `nvidia.com/gpu` gets two slices, often of the same GPU: the stage believes it has two GPUs' memory and compute, and fails or slows the GPU's other tenants.",
  remediation:
    "Set `failRequestsGreaterThanOne: true` under `sharing.timeSlicing` in the device-plugin config (GpuPool does for time-slicing pools).",
  controls: [controls.baseline("isolation"), controls.baseline("capacity")],
  kinds: ["config_map"],
  check(resource) {
    const data = get(resource.attributes, ["data"]);
    if (!isObj(data)) return notApplicable;
    const outcomes: Outcome[] = [];
    for (const [key, text] of Object.entries(data)) {
      if (typeof text !== "string" || !text.includes("timeSlicing")) continue;
      let doc: unknown;
      try {
        doc = parseYaml(text);
      } catch {
        continue;
      }
      const timeSlicing = get(doc, ["sharing", "timeSlicing"]);
      if (!isObj(timeSlicing)) continue;
      outcomes.push(
        bool(timeSlicing.failRequestsGreaterThanOne) === true
          ? compliant
          : violation(`data["${key}"].sharing.timeSlicing.failRequestsGreaterThanOne`, `device-plugin config '${key}' lets one pod take several time-slices of a GPU`),
      );
    }
    return outcomes.length ? outcomes : notApplicable;
  },
};
