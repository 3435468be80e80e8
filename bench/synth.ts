/**
 * Synth time of the example platform and of a generated large one (50 pools, 200 workflows).
 * Prints JSON. Usage: npm run bench:synth [-- --runs N]
 */
import { App } from "cdktf";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  FabricStack,
  GpuModel,
  GpuPool,
  GpuSharing,
  NetworkSegment,
  StorageTier,
  Tenant,
  Workflow,
  WorkflowDeployment,
} from "../constructs/index.ts";
import { defineStudioPlatform } from "../main.ts";

const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 3;
const nativeWorkflow = fileURLToPath(new URL("../examples/workflows/contact-sheet.yaml", import.meta.url));

/** A platform of `pools` pools and `workflows` workflows spread over one deployment per pool. */
function defineLargePlatform(app: App, pools: number, workflows: number): FabricStack {
  const stack = new FabricStack(app, "large", { platformName: "large" });
  const segments = Array.from({ length: 10 }, (_, i) => new NetworkSegment(stack, `Segment${i}`, { name: `segment-${i}` }));
  segments.slice(1).forEach((s) => s.allowFrom(segments[0]!, [8443]));
  const tenants = Array.from({ length: 20 }, (_, i) => new Tenant(stack, `Tenant${i}`, { name: `tenant-${i}`, segment: segments[i % 10]!, weight: 1 + (i % 3) }));
  const tiers = (["hot", "warm", "cold"] as const).map(
    (tierClass) => new StorageTier(stack, `Tier-${tierClass}`, { name: tierClass, tierClass, provisioner: "rook-ceph.rbd.csi.ceph.com", encryption: { parameters: { encrypted: "true" } } }),
  );
  const models = [GpuModel.H100_80GB, GpuModel.L40S_48GB, GpuModel.A100_80GB, GpuModel.A10G_24GB, GpuModel.L4_24GB];
  const template = Workflow.fromFile(nativeWorkflow);
  const perPool = Math.ceil(workflows / pools);
  let made = 0;
  for (let p = 0; p < pools; p++) {
    const model = models[p % models.length]!;
    const sharing = p % 4 === 1 ? GpuSharing.timeSlicing(4) : p % 4 === 2 && model.supportsMig ? GpuSharing.mig({ "3g.40gb": 2 }) : GpuSharing.exclusive();
    const poolTenants = [tenants[(2 * p) % 20]!, tenants[(2 * p + 1) % 20]!];
    const pool = new GpuPool(stack, `Pool${p}`, {
      name: `pool-${p}`,
      model,
      nodes: 2 + (p % 3),
      gpusPerNode: 8,
      sharing,
      tenantQuotas: poolTenants.map((tenant) => ({ tenant, gpus: 4 })),
    });
    const count = Math.min(perPool, workflows - made);
    const wfs = Array.from({ length: count }, (_, i) => Workflow.native(documentWithName(template, `wf-${made + i}`)));
    made += count;
    new WorkflowDeployment(stack, `Deployment${p}`, {
      name: `agent-${p}`,
      pool,
      tier: tiers[p % 3]!,
      segment: segments[p % 10]!,
      tenants: poolTenants,
      workflows: wfs,
      gpus: 1,
    });
  }
  return stack;
}

function documentWithName(workflow: Workflow, name: string): Record<string, unknown> {
  const doc = structuredClone(workflow.toConfig([]).document) as { metadata: { name: string } };
  doc.metadata.name = name;
  return doc as unknown as Record<string, unknown>;
}

function measure(define: (app: App) => void): { ms: number[]; resources: number } {
  const ms: number[] = [];
  let resources = 0;
  for (let i = 0; i < runs; i++) {
    const outdir = mkdtempSync(join(tmpdir(), "gpufabric-synth-"));
    const start = process.hrtime.bigint();
    const app = new App({ outdir });
    define(app);
    app.synth();
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
    const manifest = JSON.parse(readFileSync(join(outdir, "manifest.json"), "utf8")) as { stacks: Record<string, { synthesizedStackPath: string }> };
    resources = 0;
    for (const s of Object.values(manifest.stacks)) {
      const tf = JSON.parse(readFileSync(join(outdir, s.synthesizedStackPath), "utf8")) as { resource?: Record<string, object> };
      for (const byName of Object.values(tf.resource ?? {})) resources += Object.keys(byName).length;
    }
    rmSync(outdir, { recursive: true, force: true });
  }
  return { ms, resources };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const example = measure((app) => defineStudioPlatform(app));
const large = measure((app) => defineLargePlatform(app, 50, 200));
const targetS = 20;
console.log(
  JSON.stringify(
    {
      runs,
      example: { resources: example.resources, median_ms: Math.round(median(example.ms)), runs_ms: example.ms.map(Math.round) },
      large: { pools: 50, workflows: 200, resources: large.resources, median_ms: Math.round(median(large.ms)), runs_ms: large.ms.map(Math.round) },
      target_large_s: targetS,
      target_met: median(large.ms) / 1000 < targetS,
    },
    null,
    2,
  ),
);
