/**
 * A fresh platform repo consuming the packed package (packed.test.ts): at its root, cdktf's TypeScript
 * template (CommonJS, `npx ts-node main.ts`) and a plain CommonJS main.js; in esm/, an ES module folder with
 * a main.ts for tsx and strict tsc and a plain main.js. One small platform in each, the same everywhere.
 */

export interface ConsumerVersions {
  readonly gpufabric: string;
  readonly cdktf: string;
  readonly constructs: string;
  readonly providerKubernetes: string;
  readonly tsx: string;
  readonly typesNode: string;
}

const NAMES = ["FabricStack", "GpuModel", "GpuPool", "GpuSharing", "NetworkSegment", "StorageTier", "Tenant", "Workflow", "WorkflowDeployment"];

/** The platform, after the imports: the same statements in TypeScript and JavaScript. */
const PLATFORM = `
const app = new App();
const stack = new FabricStack(app, "consumer", { platformName: "consumer" });
const segment = new NetworkSegment(stack, "GpuWork", { name: "gpu-work" });
const team = new Tenant(stack, "Team", { name: "team", segment, roles: [{ subject: "group:team", role: "submitter" }] });
const pool = new GpuPool(stack, "Gpus", {
  name: "l4",
  model: GpuModel.L4_24GB,
  nodes: 1,
  gpusPerNode: 4,
  sharing: GpuSharing.exclusive(),
  tenantQuotas: [{ tenant: team, gpus: 4 }],
});
const tier = new StorageTier(stack, "Hot", {
  name: "hot",
  tierClass: "hot",
  provisioner: "ebs.csi.aws.com",
  encryption: { parameters: { encrypted: "true" } },
  retentionDays: 30,
});
new WorkflowDeployment(stack, "Agent", {
  name: "agent",
  pool,
  tier,
  segment,
  tenants: [team],
  workflows: [
    Workflow.native({
      apiVersion: "gpufabric.dev/v1",
      kind: "Workflow",
      metadata: { name: "hello" },
      spec: { stages: [{ id: "greet", resources: { gpus: 1, vram: "1Gi" }, run: { command: ["node", "-e", "0"] } }] },
    }),
  ],
});
// The subpath exports resolve too (CommonJS TypeScript reads them through typesVersions).
if (!(new Error("not one") instanceof ValidationError)) app.synth();
`;

const esImports = `import { App } from "cdktf";
import { ${NAMES.join(", ")} } from "gpufabric";
import { ValidationError } from "gpufabric/config";
`;
const cjsRequires = `const { App } = require("cdktf");
const { ${NAMES.join(", ")} } = require("gpufabric");
const { ValidationError } = require("gpufabric/config");
`;

/** cdktf's `init --template typescript` tsconfig.json, as that template writes it. */
const CDKTF_TEMPLATE_TSCONFIG = {
  compilerOptions: {
    alwaysStrict: true,
    declaration: true,
    experimentalDecorators: true,
    inlineSourceMap: true,
    inlineSources: true,
    lib: ["es2018"],
    module: "CommonJS",
    noEmitOnError: true,
    noFallthroughCasesInSwitch: true,
    noImplicitAny: true,
    noImplicitReturns: true,
    noImplicitThis: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    resolveJsonModule: true,
    strict: true,
    strictNullChecks: true,
    strictPropertyInitialization: true,
    stripInternal: true,
    target: "ES2018",
    incremental: true,
    skipLibCheck: true,
  },
  include: ["**/*.ts"],
  exclude: ["node_modules", "cdktf.out", "esm"],
};

/** Stricter than the template, and every .d.ts checked (ours included), under Node's ES module resolution. */
const STRICT_TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    noImplicitOverride: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    skipLibCheck: false,
    types: ["node"],
    noEmit: true,
  },
  files: ["main.ts"],
};

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** Every file of the platform repo, by path. */
export function consumerFiles(v: ConsumerVersions): Record<string, string> {
  return {
    "package.json": json({
      name: "platform",
      version: "1.0.0",
      private: true,
      main: "main.js",
      dependencies: { gpufabric: v.gpufabric, cdktf: v.cdktf, constructs: v.constructs, "@cdktf/provider-kubernetes": v.providerKubernetes },
      // ts-node loads TypeScript's JavaScript API, which TypeScript 7 does not ship.
      devDependencies: { typescript: "~5.9.0", "ts-node": "^10.9.2", tsx: v.tsx, "@types/node": v.typesNode },
    }),
    "cdktf.json": json({ language: "typescript", app: "npx ts-node main.ts", output: "cdktf.out", terraformProviders: [], terraformModules: [], context: {} }),
    "tsconfig.json": json(CDKTF_TEMPLATE_TSCONFIG),
    "main.ts": esImports + PLATFORM,
    "main.js": cjsRequires + PLATFORM,
    "esm/package.json": json({ type: "module" }),
    "esm/tsconfig.json": json(STRICT_TSCONFIG),
    "esm/main.ts": esImports + PLATFORM,
    "esm/main.js": esImports + PLATFORM,
  };
}
