/**
 * A GPU platform on Amazon EKS that scales its GPU nodes from zero: one stack for the AWS side (the cluster,
 * the nodes' IAM role, two GPU node groups) and one FabricStack for the Kubernetes side (the GpuPools on
 * those node groups). They are two stacks because they are applied in that order with different providers:
 * `cdktf deploy studio-eks` first, then `cdktf deploy studio-gpus` against the new cluster's kubeconfig.
 *
 * Run it with `npx tsx examples/eks/main.ts` (Terraform JSON in cdktf.out/stacks/).
 */
import { EksCluster } from "@cdktf/provider-aws/lib/eks-cluster/index.js";
import { IamRole } from "@cdktf/provider-aws/lib/iam-role/index.js";
import { IamRolePolicyAttachment } from "@cdktf/provider-aws/lib/iam-role-policy-attachment/index.js";
import { AwsProvider, type AwsProviderConfig } from "@cdktf/provider-aws/lib/provider/index.js";
import { App, TerraformStack, TerraformVariable } from "cdktf";
import { fileURLToPath } from "node:url";
import { EksGpuNodePool } from "../../constructs/aws/index.ts";
import { FabricStack, GpuPool, GpuSharing, runSynth } from "../../constructs/index.ts";

export interface EksExampleOptions {
  /**
   * The AWS provider's settings.
   * @default { region: "eu-central-1" } with credentials from the environment
   */
  readonly aws?: AwsProviderConfig;
}

export interface EksExample {
  readonly aws: TerraformStack;
  readonly kubernetes: FabricStack;
  readonly pools: readonly GpuPool[];
}

const assumedBy = (service: string) =>
  JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }] });

export function defineEksPlatform(app: App, options: EksExampleOptions = {}): EksExample {
  const aws = new TerraformStack(app, "studio-eks");
  new AwsProvider(aws, "aws", options.aws ?? { region: "eu-central-1" });
  const subnets = new TerraformVariable(aws, "subnet_ids", {
    type: "list(string)",
    description: "Private subnets of the cluster and its GPU nodes (two or more zones)",
    default: ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"],
  });

  const clusterRole = new IamRole(aws, "cluster-role", { name: "studio-eks-cluster", assumeRolePolicy: assumedBy("eks.amazonaws.com") });
  const clusterPolicy = new IamRolePolicyAttachment(aws, "cluster-policy", { role: clusterRole.name, policyArn: "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy" });
  const cluster = new EksCluster(aws, "cluster", {
    name: "studio",
    roleArn: clusterRole.arn,
    vpcConfig: { subnetIds: subnets.listValue },
    dependsOn: [clusterPolicy],
  });

  const nodeRole = new IamRole(aws, "node-role", { name: "studio-gpu-nodes", assumeRolePolicy: assumedBy("ec2.amazonaws.com") });
  const nodePolicies = ["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"].map(
    (policy) => new IamRolePolicyAttachment(aws, `node-${policy}`, { role: nodeRole.name, policyArn: `arn:aws:iam::aws:policy/${policy}` }),
  );
  // A node group needs its role's policies before its nodes can join.
  const common = { clusterName: cluster.name, nodeRoleArn: nodeRole.arn, subnetIds: subnets.listValue, dependsOn: nodePolicies };
  // Training on H100s, on demand; sketches time-share L40S spot nodes. Both start at zero nodes.
  const train = new EksGpuNodePool(aws, "train", { ...common, instanceTypes: ["p5.48xlarge"], maxNodes: 2 });
  const sketch = new EksGpuNodePool(aws, "sketch", { ...common, instanceTypes: ["g6e.xlarge", "g6e.2xlarge"], spot: true, maxNodes: 6, sharing: GpuSharing.timeSlicing(4) });

  const kubernetes = new FabricStack(app, "studio-gpus", { platformName: "studio", region: "eu-central-1", kubeconfigContext: "studio" });
  const pools = [new GpuPool(kubernetes, "train", { nodePool: train }), new GpuPool(kubernetes, "sketch", { nodePool: sketch })];
  return { aws, kubernetes, pools };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runSynth(() => {
    const app = new App();
    defineEksPlatform(app);
    app.synth();
  });
}
