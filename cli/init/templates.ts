/**
 * The files `gpufabric init` writes, as string templates. They live in TypeScript rather than as files
 * beside it so that a compiled build (tsc copies no other files) and the sources carry the same text.
 */

/** What the templates are filled with. */
export interface TemplateContext {
  /** The platform's name: the stack id, `platformName` and the package name (a DNS-1123 label). */
  readonly name: string;
  /** Version ranges of the packages the platform repo depends on. */
  readonly versions: ScaffoldVersions;
}

export interface ScaffoldVersions {
  readonly gpufabric: string;
  readonly cdktf: string;
  readonly cdktfCli: string;
  readonly constructs: string;
  readonly providerKubernetes: string;
  readonly tsx: string;
  readonly typescript: string;
  readonly typesNode: string;
}

/** The names the scaffold's main.ts gives its objects; the README and the tests refer to them. */
export const SCAFFOLD_NAMES = {
  segment: "gpu-work",
  tenant: "team",
  pool: "gpus",
  tier: "hot",
  deployment: "agent",
  workflow: "hello",
  /** The token subject main.ts lets submit runs (tokens of other subjects only view). */
  submitter: "team-ci",
} as const;

export function packageJson({ name, versions }: TemplateContext): string {
  const pkg = {
    name,
    private: true,
    description: `The ${name} GPU platform, declared with gpufabric`,
    type: "module",
    scripts: {
      synth: "gpufabric synth",
      diff: "cdktf diff",
      deploy: "cdktf deploy",
      validate: `gpufabric validate workflows/${SCAFFOLD_NAMES.workflow}.yaml`,
      dev: "gpufabric dev",
      typecheck: "tsc --noEmit",
    },
    dependencies: {
      "@cdktf/provider-kubernetes": versions.providerKubernetes,
      cdktf: versions.cdktf,
      constructs: versions.constructs,
      gpufabric: versions.gpufabric,
    },
    devDependencies: {
      "@types/node": versions.typesNode,
      "cdktf-cli": versions.cdktfCli,
      tsx: versions.tsx,
      typescript: versions.typescript,
    },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

export function cdktfJson(): string {
  // "npx tsx main.ts": tsx runs main.ts as the ES module it is, with no compile step and no tsconfig
  // to get right; cdktf's usual ts-node setup trips over ESM packages (`"type": "module"`) such as this one.
  const config = {
    language: "typescript",
    app: "npx tsx main.ts",
    output: "cdktf.out",
    sendCrashReports: "false",
    terraformProviders: [],
    terraformModules: [],
    context: {},
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

export function tsconfigJson(): string {
  // For editors and `npm run typecheck` only: tsx runs main.ts without it.
  const config = {
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      lib: ["ES2023"],
      types: ["node"],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
    },
    include: ["main.ts"],
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

export function mainTs({ name }: TemplateContext): string {
  const n = SCAFFOLD_NAMES;
  return `/**
 * The ${name} GPU platform. \`npx gpufabric synth\` (or \`npx cdktf synth\`) runs this file through cdktf.json's
 * app, "npx tsx main.ts": tsx runs TypeScript ES modules as they are, with no compile step, which
 * cdktf's default ts-node setup does not do for ESM packages. The Terraform JSON lands in cdktf.out/;
 * \`npx cdktf deploy\` applies it to the cluster of your kubeconfig's current context (or of
 * GPUFABRIC_KUBE_CONTEXT).
 */
import { App } from "cdktf";
import { fileURLToPath } from "node:url";
import {
  CompliancePolicy,
  FabricStack,
  GpuModel,
  GpuPool,
  GpuSharing,
  NetworkSegment,
  StorageTier,
  Tenant,
  Workflow,
  WorkflowDeployment,
} from "gpufabric";

const app = new App();
const stack = new FabricStack(app, "${name}", {
  platformName: "${name}",
  kubeconfigContext: process.env.GPUFABRIC_KUBE_CONTEXT,
});

// A namespace with Pod Security "restricted" and default-deny ingress and egress (DNS excepted).
const gpuWork = new NetworkSegment(stack, "GpuWork", { name: "${n.segment}" });

// Who submits work. Token holders not listed in roles may only view the tenant's runs.
const team = new Tenant(stack, "Team", {
  name: "${n.tenant}",
  segment: gpuWork,
  roles: [
    { subject: "${n.submitter}", role: "submitter" },
    { subject: "group:${n.tenant}", role: "submitter" },
  ],
});

// Your GPU nodes: set the model and counts to what the cluster has (GpuModel lists the known ones).
const gpus = new GpuPool(stack, "Gpus", {
  name: "${n.pool}",
  model: GpuModel.L4_24GB,
  nodes: 1,
  gpusPerNode: 4,
  sharing: GpuSharing.exclusive(),
  tenantQuotas: [{ tenant: team, gpus: 4 }],
});

// Models, artifacts and the agent's state, encrypted at rest. Give your cluster's CSI driver and its
// encryption parameters, e.g. { encrypted: "true", encryptionKMSID: "..." } for Ceph RBD.
const hot = new StorageTier(stack, "Hot", {
  name: "${n.tier}",
  tierClass: "hot",
  provisioner: "ebs.csi.aws.com",
  encryption: { parameters: { encrypted: "true" } },
  retentionDays: 30,
});

// The gpufabric agent: it serves the API, schedules the workflows' stages onto the pool's GPUs and
// runs them in a sandbox. Once you have pushed the agent image, set image: "<registry>/gpufabric/agent:<version>".
new WorkflowDeployment(stack, "Agent", {
  name: "${n.deployment}",
  pool: gpus,
  tier: hot,
  segment: gpuWork,
  tenants: [team],
  workflows: [Workflow.fromFile(fileURLToPath(new URL("./workflows/${n.workflow}.yaml", import.meta.url)))],
});

// Every error finding of these packs fails the synth, naming the construct, the rule and the fix.
new CompliancePolicy(stack, "Compliance", { packs: ["gpu-baseline", "soc2"] });

app.synth();
`;
}

export function helloWorkflow(): string {
  const n = SCAFFOLD_NAMES;
  return `# A two-stage workflow: \`greet\` writes a greeting on the CPU, \`shout\` reads it and upper-cases it on
# a GPU (it declares one GPU, its VRAM and a model, as a diffusion or upscaling stage would).
# Each stage reads the outputs of the stages it needs from $GPUFABRIC_INPUT_DIR/<stage-id>/ and writes
# its own to $GPUFABRIC_OUTPUT_DIR; those files are the run's artifacts.
#   npx gpufabric validate workflows/${n.workflow}.yaml
apiVersion: gpufabric.dev/v1
kind: Workflow
metadata:
  name: ${n.workflow}
  description: Greets on the CPU, then shouts on a GPU.
spec:
  priority: batch
  stages:
    - id: greet
      resources: { gpus: 0 }
      run:
        command:
          - node
          - -e
          - require('node:fs').writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + '/greeting.txt', 'hello from ${n.workflow}\\n')
        timeoutSeconds: 60
      estimate: { durationSeconds: 0.2 }

    - id: shout
      needs: [greet]
      resources: { gpus: 1, vram: 1Gi, model: uppercase-v1 }
      run:
        command:
          - node
          - -e
          - >-
            const fs = require('node:fs');
            const text = fs.readFileSync(process.env.GPUFABRIC_INPUT_DIR + '/greet/greeting.txt', 'utf8');
            fs.writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + '/shout.txt', text.toUpperCase());
        timeoutSeconds: 120
      estimate: { durationSeconds: 1, modelLoadSeconds: 0.5 }
`;
}

export function gitignore(): string {
  return `# Build output and dependencies
node_modules/
cdktf.out/
.terraform/
terraform.*.tfstate*
*.tsbuildinfo
# gpufabric dev's local agent: its store, artifacts, keys and tokens
.gpufabric/
# Secrets: the files gpufabric keys/tokens/audit write before they go into Kubernetes Secrets
keyring
keyring.*
tokens/
audit-signing/
*.pem
*.key
*.crt
.env
.env.*
`;
}

export function readme({ name }: TemplateContext): string {
  const n = SCAFFOLD_NAMES;
  return `# ${name}

The ${name} GPU platform, declared with gpufabric:
\`main.ts\` declares one GPU pool, one encrypted storage tier, one network segment, one tenant and
the gpufabric agent serving \`workflows/${n.workflow}.yaml\`. Edit it for your cluster first: the GPU model
and node counts, and the storage provisioner.

## Try it locally

    npm install
    npx gpufabric validate workflows/${n.workflow}.yaml   # the workflow's stages
    npx gpufabric dev --once                         # the agent on 127.0.0.1, running ${n.workflow} (simulated GPUs without nvidia-smi)

## Synthesize

    npx gpufabric synth      # Terraform JSON in cdktf.out/, the compliance packs checked, a summary printed

A bad prop or an error finding fails here, naming the construct, the field and the fix.

## Deploy

1. Build and push the agent image, and set \`image\` on the \`WorkflowDeployment\` in \`main.ts\`.
2. Deploy once, so the \`${n.segment}\` namespace exists (the agent pod waits for its Secrets):

       npx cdktf deploy ${name}    # GPUFABRIC_KUBE_CONTEXT picks the kubeconfig context

3. Create the Secrets the agent mounts; their values never pass through Terraform, and .gitignore keeps
   them out of git:

       npx gpufabric keys init --keyring keyring
       npx gpufabric tokens create ${n.tenant} --subject ${n.submitter}   # prints the token once
       npx gpufabric audit keygen --out audit-signing
       kubectl -n ${n.segment} create secret generic ${n.deployment}-keyring --from-file=keyring
       kubectl -n ${n.segment} create secret generic ${n.deployment}-tokens --from-file=tokens
       kubectl -n ${n.segment} create secret generic ${n.deployment}-audit-signing --from-file=audit-signing/private.pem
       kubectl -n ${n.segment} create secret tls ${n.deployment}-tls --cert=tls.crt --key=tls.key

## Submit a run

The agent's API listens inside the \`${n.segment}\` namespace only. From your machine, with the token
\`tokens create\` printed and the CA that signed \`tls.crt\` (which must then name \`localhost\`):

    kubectl -n ${n.segment} port-forward svc/${n.deployment} 8443:443
    npx gpufabric profile add ${name} --url https://localhost:8443 --ca-file ca.crt --token-stdin --use   # paste the token, then Ctrl-D
    npx gpufabric runs submit --ref ${n.workflow} --watch     # live progress per stage
    npx gpufabric runs artifacts RUN_ID --out results     # the stages' files, decrypted

\`gpufabric runs --help\` lists the rest (list, get, logs, cancel).
`;
}

/** Every file of the scaffold, by path relative to the platform repo. */
export function scaffoldFiles(context: TemplateContext): ReadonlyArray<{ readonly path: string; readonly content: string }> {
  return [
    { path: "package.json", content: packageJson(context) },
    { path: "cdktf.json", content: cdktfJson() },
    { path: "tsconfig.json", content: tsconfigJson() },
    { path: "main.ts", content: mainTs(context) },
    { path: `workflows/${SCAFFOLD_NAMES.workflow}.yaml`, content: helloWorkflow() },
    { path: ".gitignore", content: gitignore() },
    { path: "README.md", content: readme(context) },
  ];
}
