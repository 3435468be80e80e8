import { ConfigMapV1 } from "@cdktf/provider-kubernetes/lib/config-map-v1/index.js";
import { Construct } from "constructs";
import { stringify as toYaml } from "yaml";
import { FabricStack } from "./fabric-stack.ts";

/** The ConfigMap the ClusterPolicy's `devicePlugin.config.name` names: one key per shared pool. */
export const DEVICE_PLUGIN_CONFIG_NAME = "gpufabric-device-plugin";
/** The ConfigMap the ClusterPolicy's `migManager.config.name` names: one `config.yaml` for all MIG pools. */
export const MIG_PARTED_CONFIG_NAME = "gpufabric-mig-parted";
/** The mig-parted entry that turns MIG off; no pool may be named like it. */
export const RESERVED_OPERATOR_CONFIG = "all-disabled";

/**
 * The NVIDIA GPU Operator's sharing configs for every shared pool of a stack in one operator namespace.
 * The operator reads one device-plugin ConfigMap (each node picks its key with the
 * `nvidia.com/device-plugin.config` label) and one mig-parted config (each node picks its entry with
 * `nvidia.com/mig.config`), so pools add entries to shared ConfigMaps instead of writing their own.
 * Created on demand by the pools, one per (stack, operator namespace): use `GpuOperatorConfig.of`.
 */
export class GpuOperatorConfig extends Construct {
  /** The config of `stack` for `namespace`, created on first use (construct id `GpuOperatorConfig-<namespace>`). */
  static of(stack: FabricStack, namespace: string): GpuOperatorConfig {
    const id = `GpuOperatorConfig-${namespace}`;
    const existing = stack.node.tryFindChild(id);
    if (existing instanceof GpuOperatorConfig) return existing;
    return new GpuOperatorConfig(stack, id, namespace);
  }

  private readonly devicePluginEntries = new Map<string, string>();
  private readonly migEntries = new Map<string, unknown>();
  private devicePlugin: ConfigMapV1 | undefined;
  private migParted: ConfigMapV1 | undefined;

  private constructor(
    private readonly stack: FabricStack,
    id: string,
    readonly namespace: string,
  ) {
    super(stack, id);
  }

  /** Adds a pool's device-plugin config under the key `pool` (the node label value; GpuPool keeps names unique per stack). */
  addDevicePluginConfig(pool: string, config: unknown): void {
    this.devicePluginEntries.set(pool, toYaml(config));
    this.devicePlugin ??= this.configMap("DevicePlugin", DEVICE_PLUGIN_CONFIG_NAME, "device-plugin-config");
    this.devicePlugin.data = sortedRecord(this.devicePluginEntries);
  }

  /** Adds a pool's MIG layout as the mig-parted config named `pool`. */
  addMigConfig(pool: string, devices: readonly unknown[]): void {
    this.migEntries.set(pool, devices);
    this.migParted ??= this.configMap("MigParted", MIG_PARTED_CONFIG_NAME, "mig-parted-config");
    const migConfigs = { [RESERVED_OPERATOR_CONFIG]: [{ devices: "all", "mig-enabled": false }], ...sortedRecord(this.migEntries) };
    this.migParted.data = { "config.yaml": toYaml({ version: "v1", "mig-configs": migConfigs }) };
  }

  private configMap(id: string, name: string, component: string): ConfigMapV1 {
    return new ConfigMapV1(this, id, {
      metadata: { name, namespace: this.namespace, labels: this.stack.labelsFor(component, name) },
      data: {},
    });
  }
}

function sortedRecord<T>(entries: ReadonlyMap<string, T>): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
