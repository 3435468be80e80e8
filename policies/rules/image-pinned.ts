import { compliant, violation, type Rule } from "../model.ts";
import { checkContainers, controls, path, workloadKinds } from "./support.ts";

/** The tag of an image reference, ignoring a registry port (`host:5000/app`). */
function tagOf(image: string): string | undefined {
  const lastSegment = image.slice(image.lastIndexOf("/") + 1);
  const colon = lastSegment.indexOf(":");
  return colon === -1 ? undefined : lastSegment.slice(colon + 1);
}

export const imagePinned: Rule = {
  id: "GF-POD-010",
  name: "image-pinned",
  level: "warning",
  title: "Container images are pinned to a digest or a fixed tag",
  rationale:
    "An untagged or `latest` image changes under the same name: what runs is not what was reviewed, and a run cannot be reproduced from its audit record.",
  remediation: "Reference images by digest (`image@sha256:...`) or by an immutable version tag, never `latest` or no tag.",
  controls: [controls.baseline("hardening"), controls.hipaa("164.312(c)"), controls.soc2("CC7.2")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkContainers(resource, context, ({ container, path: cpath, name }) => {
      const image = context.resolve(container.image);
      if (typeof image !== "string" || image.includes("@sha256:")) return compliant;
      const tag = tagOf(image);
      return tag && tag !== "latest"
        ? compliant
        : violation(path(...cpath, "image"), `container '${name}' uses '${image}', which is not pinned`);
    });
  },
};
