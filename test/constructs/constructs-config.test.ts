import { Testing } from "cdktf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkCidr } from "../../constructs/cidr.ts";
import { FabricStack } from "../../constructs/fabric-stack.ts";
import { GpuModel, MIG_COMPUTE_SLICES, MIG_MEMORY_SLICES } from "../../constructs/gpu-model.ts";
import { GpuPool } from "../../constructs/gpu-pool.ts";
import { GpuSharing } from "../../constructs/gpu-sharing.ts";
import { NetworkSegment } from "../../constructs/network-segment.ts";
import { StorageTier } from "../../constructs/storage-tier.ts";
import { Tenant } from "../../constructs/tenant.ts";
import { ValidationError } from "../../runtime/config/errors.ts";
import { PLATFORM_CONFIG_VERSION, PlatformConfigSchema } from "../../runtime/config/schema.ts";

describe("the constructs' toConfig() pieces", () => {
  it("compose into a platform config the runtime schema accepts", () => {
    const stack = new FabricStack(Testing.app(), "prod", { region: "eu-west-1", zones: ["eu-west-1a"] });
    const studio = new NetworkSegment(stack, "studio", { egressCidrs: ["10.0.0.0/8"] });
    const serving = new NetworkSegment(stack, "serving");
    serving.allowFrom(studio, [8443]);
    const acme = new Tenant(stack, "acme", { segment: studio, gpuQuota: 4, roles: [{ subject: "group:acme", role: "submitter" }] });
    const clinic = new Tenant(stack, "clinic", { segment: serving, dataClassification: "phi" });
    const batch = new GpuPool(stack, "batch", { model: GpuModel.H100_80GB, nodes: 2, gpusPerNode: 8, tenantQuotas: [{ tenant: acme, gpus: 8 }, { tenant: clinic, gpus: 2 }] });
    const interactive = new GpuPool(stack, "interactive", { model: GpuModel.L40S_48GB, nodes: 1, gpusPerNode: 4, sharing: GpuSharing.timeSlicing(4) });
    const hot = new StorageTier(stack, "hot", { tierClass: "hot", provisioner: "ebs.csi.aws.com", encryption: { parameters: { encrypted: "true" } }, retentionDays: 14 });

    const config = PlatformConfigSchema.parse({
      version: PLATFORM_CONFIG_VERSION,
      platform: { name: stack.platformName, region: stack.region ?? null, zones: [...stack.zones] },
      deployment: { name: "agent", namespace: studio.namespace, pool: batch.name, tier: hot.name, segment: studio.name, listen: { host: "0.0.0.0", port: 8443 }, dataDir: "/var/lib/gpufabric", image: "gpufabric/agent:test" },
      pools: [batch.toConfig(), interactive.toConfig()],
      tiers: [hot.toConfig()],
      segments: [studio.toConfig(), serving.toConfig()],
      tenants: [acme.toConfig(), clinic.toConfig()],
      workflows: [],
      scheduler: { headroomMiB: 512, preemption: "stage-boundary", agingSeconds: 60 },
      security: {
        auth: { required: true, tokens: { secretName: "agent-tokens", mountPath: "/var/run/secrets/tokens" } },
        encryption: { atRest: true, algorithm: "AES-256-GCM", keyring: { secretName: "agent-keyring", mountPath: "/var/run/secrets/keyring" } },
        audit: { signingKey: { secretName: "agent-audit-signing", mountPath: "/var/run/secrets/audit" }, sink: { type: "volume", claimName: "agent-audit", mountPath: "/var/lib/audit" }, checkpointEvery: 100, checkpointIntervalSeconds: 60 },
        tls: { enabled: false },
      },
      runtimeRules: [],
    });
    expect(config.pools.map((p) => p.devices.length)).toEqual([16, 4]);
    expect(config.pools[0]!.tenantQuotas).toEqual({ acme: 8, clinic: 2 });
    expect(config.segments[1]!.allowedFrom).toEqual([{ segment: "studio", ports: [8443] }]);
    expect(config.tenants[1]!.isolation).toBe("dedicated");
    expect(config.tiers[0]).toMatchObject({ encrypted: true, retentionDays: 14 });

    // Mutual TLS only on top of TLS: the refusal names the field and the fix.
    const plainWithClientCa = { ...config, security: { ...config.security, tls: { enabled: false, clientCa: { secretName: "workers-ca", mountPath: "/var/run/secrets/ca" } } } };
    const refused = PlatformConfigSchema.safeParse(plainWithClientCa);
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]).toMatchObject({ path: ["security", "tls", "clientCa"], message: expect.stringMatching(/needs TLS: set enabled: true and a certificate/) });
  });
});

describe("MIG layouts (property)", () => {
  const model = GpuModel.H100_80GB;
  const profiles = [...model.migProfiles.keys()];
  const layout = fc.dictionary(fc.constantFrom(...profiles), fc.integer({ min: 1, max: 7 }), { minKeys: 1, maxKeys: 4 });

  it("are accepted exactly when they fit a GPU's 7 compute and 8 memory slices, and enumerate every instance", () => {
    fc.assert(
      fc.property(layout, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), (counts, nodes, gpusPerNode) => {
        const entries = Object.entries(counts);
        const compute = entries.reduce((sum, [p, n]) => sum + model.migProfiles.get(p)!.computeSlices * n, 0);
        const memory = entries.reduce((sum, [p, n]) => sum + model.migProfiles.get(p)!.memorySlices! * n, 0);
        const fits = compute <= MIG_COMPUTE_SLICES && memory <= MIG_MEMORY_SLICES;
        const stack = new FabricStack(Testing.app(), "prod");
        const declare = () => new GpuPool(stack, "mig", { model, nodes, gpusPerNode, sharing: GpuSharing.mig(counts) });
        if (!fits) {
          expect(declare).toThrow(ValidationError);
          return;
        }
        const pool = declare();
        const devices = pool.toConfig().devices;
        const perGpu = entries.reduce((sum, [, n]) => sum + n, 0);
        expect(devices).toHaveLength(nodes * gpusPerNode * perGpu);
        expect(new Set(devices.map((d) => d.id)).size).toBe(devices.length);
        // The memory of one GPU's instances never exceeds the GPU's.
        const gpu0 = devices.filter((d) => d.node === "mig-n0" && d.index === 0);
        expect(gpu0.reduce((sum, d) => sum + d.memoryMiB, 0)).toBeLessThanOrEqual(model.memoryMiB);
        expect(pool.deviceMemoryMiB).toBe(Math.max(...devices.map((d) => d.memoryMiB)));
      }),
      { numRuns: 150 },
    );
  });
});

describe("CIDR checks (property)", () => {
  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
  const toText = (o: number[]) => o.join(".");
  const mask = (octets: number[], prefix: number) => {
    const value = octets.reduce((acc, o) => acc * 256 + o, 0);
    const size = 2 ** (32 - prefix);
    const network = Math.floor(value / size) * size;
    return [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256);
  };

  it("accept every network address, and for a host address name the network address that is accepted", () => {
    fc.assert(
      fc.property(ipv4, fc.integer({ min: 0, max: 32 }), (octets, prefix) => {
        const network = `${toText(mask(octets, prefix))}/${prefix}`;
        expect(checkCidr(network)).toEqual({ ok: true });
        const given = `${toText(octets)}/${prefix}`;
        const result = checkCidr(given);
        if (given === network) expect(result.ok).toBe(true);
        else {
          expect(result.ok).toBe(false);
          expect(!result.ok && result.message).toContain(`write the network address, '${network}'`);
        }
      }),
      { numRuns: 300 },
    );
  });
});
