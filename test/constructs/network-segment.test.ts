import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { FabricStack } from "../../constructs/fabric-stack.ts";
import { NetworkSegment, type NetworkSegmentProps } from "../../constructs/network-segment.ts";
import { ValidationError } from "../../runtime/config/errors.ts";
import { SegmentSchema } from "../../runtime/config/schema.ts";
import { metadataOf, synth } from "../support/synth.ts";

const NP = "kubernetes_network_policy_v1";

function newStack(): FabricStack {
  return new FabricStack(Testing.app(), "prod", { region: "eu-west-1" });
}

describe("NetworkSegment", () => {
  it("creates a namespace with Pod Security restricted and segment labels", () => {
    const stack = newStack();
    const segment = new NetworkSegment(stack, "Studio");
    expect(segment.name).toBe("studio");
    expect(segment.namespace).toBe("studio");
    const ns = synth(stack).find("kubernetes_namespace_v1", "studio");
    expect(metadataOf(ns).labels).toMatchObject({
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/audit": "restricted",
      "pod-security.kubernetes.io/warn": "restricted",
      "gpufabric.dev/segment": "studio",
      "app.kubernetes.io/component": "segment",
      "app.kubernetes.io/part-of": "gpufabric",
    });
  });

  it("denies all ingress and egress by default, except DNS to kube-system", () => {
    const stack = newStack();
    new NetworkSegment(stack, "studio", { namespace: "team-studio" });
    const out = synth(stack);
    expect(out.names(NP).sort()).toEqual(["allow-dns", "default-deny"]);

    const deny = out.find(NP, "default-deny", "team-studio").config;
    expect(deny.spec.pod_selector).toEqual({});
    expect(deny.spec.policy_types).toEqual(["Ingress", "Egress"]);
    expect(deny.spec.ingress).toBeUndefined();
    expect(deny.spec.egress).toBeUndefined();
    // Created after its namespace.
    expect(deny.depends_on).toEqual([expect.stringMatching(/^kubernetes_namespace_v1\./)]);

    const dns = out.find(NP, "allow-dns", "team-studio").config;
    expect(dns.spec.policy_types).toEqual(["Egress"]);
    expect(dns.spec.pod_selector).toEqual({});
    expect(dns.spec.egress).toEqual([
      {
        to: [{ namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "kube-system" } } }],
        ports: [
          { protocol: "UDP", port: "53" },
          { protocol: "TCP", port: "53" },
        ],
      },
    ]);
  });

  it("can leave DNS out", () => {
    const stack = newStack();
    new NetworkSegment(stack, "airgap", { allowDns: false });
    expect(synth(stack).names(NP)).toEqual(["default-deny"]);
  });

  it("allows egress to the listed CIDRs only", () => {
    const stack = newStack();
    const segment = new NetworkSegment(stack, "studio", { egressCidrs: ["10.20.0.0/16", "2001:db8::/32"] });
    const policy = synth(stack).find(NP, "allow-egress-cidrs", "studio").config;
    expect(policy.spec.policy_types).toEqual(["Egress"]);
    expect(policy.spec.egress).toEqual([{ to: [{ ip_block: { cidr: "10.20.0.0/16" } }, { ip_block: { cidr: "2001:db8::/32" } }] }]);
    expect(segment.toConfig().egressCidrs).toEqual(["10.20.0.0/16", "2001:db8::/32"]);
  });

  it("allowFrom creates the ingress policy here and the matching egress policy in the other segment", () => {
    const stack = newStack();
    const serving = new NetworkSegment(stack, "serving");
    const studio = new NetworkSegment(stack, "studio", { namespace: "studio-ns" });
    serving.allowFrom(studio, [8443, 443]);
    const out = synth(stack);

    const ingress = out.find(NP, "allow-from-studio", "serving").config;
    expect(ingress.spec.policy_types).toEqual(["Ingress"]);
    expect(ingress.spec.ingress).toEqual([
      {
        from: [{ namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "studio-ns" } } }],
        ports: [
          { protocol: "TCP", port: "443" },
          { protocol: "TCP", port: "8443" },
        ],
      },
    ]);
    const egress = out.find(NP, "allow-to-serving", "studio-ns").config;
    expect(egress.spec.policy_types).toEqual(["Egress"]);
    expect(egress.spec.egress).toEqual([
      {
        to: [{ namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "serving" } } }],
        ports: [
          { protocol: "TCP", port: "443" },
          { protocol: "TCP", port: "8443" },
        ],
      },
    ]);
    expect(serving.allowedFrom.map((f) => [f.segment.name, f.ports])).toEqual([["studio", [443, 8443]]]);
    expect(serving.toConfig()).toEqual({
      name: "serving",
      namespace: "serving",
      defaultDenyIngress: true,
      defaultDenyEgress: true,
      allowedFrom: [{ segment: "studio", ports: [443, 8443] }],
      egressCidrs: [],
    });
    expect(SegmentSchema.parse(serving.toConfig())).toEqual(serving.toConfig());
    // The reverse direction stays closed.
    expect(studio.allowedFrom).toEqual([]);
    expect(out.named(NP, "allow-from-serving")).toEqual([]);
  });

  describe("rejects bad props with a fix-it message", () => {
    const cases: [string, NetworkSegmentProps, RegExp][] = [
      ["name", { name: "Studio_1" }, /name: "Studio_1" is not a DNS-1123 label: .*\(e\.g\. 'studio-1'\)/],
      ["long name", { name: "a".repeat(53) }, /is 53 characters long: use at most 52/],
      ["namespace", { namespace: "-ns" }, /namespace: "-ns" is not a DNS-1123 label/],
      ["system namespace", { namespace: "kube-system" }, /namespace: 'kube-system' is a namespace Kubernetes manages: give the segment a namespace of its own/],
      ["cidr without prefix", { egressCidrs: ["10.0.0.1"] }, /egressCidrs\[0\]: "10.0.0.1" is not a CIDR: write an address and a prefix length/],
      ["cidr address", { egressCidrs: ["10.0.0.0/8", "10.0.0.256/32"] }, /egressCidrs\[1\]: '10.0.0.256' in '10.0.0.256\/32' is not an IPv4 or IPv6 address/],
      ["cidr prefix", { egressCidrs: ["10.0.0.0/33"] }, /prefix '\/33' in '10.0.0.0\/33' is not a length from 0 to 32/],
      ["cidr host bits", { egressCidrs: ["10.1.2.3/16"] }, /'10.1.2.3\/16' has host bits set: write the network address, '10.1.0.0\/16'/],
      ["ipv6 host bits", { egressCidrs: ["2001:db8::1/32"] }, /write the network address, '2001:db8::\/32'/],
    ];
    it.each(cases)("%s", (_name, props, message) => {
      const create = () => new NetworkSegment(newStack(), "studio", props);
      expect(create).toThrow(ValidationError);
      expect(create).toThrow(message);
    });

    it("reports every bad field at once", () => {
      try {
        new NetworkSegment(newStack(), "studio", { name: "Bad", egressCidrs: ["x/1"] });
        expect.unreachable("should have thrown");
      } catch (err) {
        expect((err as ValidationError).issues.map((i) => i.field)).toEqual(["name", "egressCidrs[0]"]);
      }
    });

    it("leaves nothing behind when it throws, so the id and name can be declared again", () => {
      const stack = newStack();
      expect(() => new NetworkSegment(stack, "studio", { egressCidrs: ["nope"] })).toThrow(ValidationError);
      // Pass the namespace check but fail later: the claimed names must not stick either.
      expect(() => new NetworkSegment(stack, "studio", { egressCidrs: ["10.0.0.1/8"] })).toThrow(/host bits/);
      const segment = new NetworkSegment(stack, "studio");
      expect(segment.node.path).toBe("prod/studio");
      expect(synth(stack).names("kubernetes_namespace_v1")).toEqual(["studio"]);
    });

    it("refuses a second segment with the same name or namespace", () => {
      const stack = newStack();
      new NetworkSegment(stack, "studio");
      expect(() => new NetworkSegment(stack, "studio2", { name: "studio" })).toThrow(/segment 'studio' is already declared by 'prod\/studio' in this stack: give one of them another name/);
      expect(() => new NetworkSegment(stack, "other", { namespace: "studio" })).toThrow(/namespace: namespace 'studio' is already declared by 'prod\/studio'/);
    });
  });

  describe("allowFrom rejects bad flows", () => {
    it.each([
      [[], /ports: is empty: list the TCP ports/],
      [[0], /ports\[0\]: 0 is not a port: give a whole number from 1 to 65535/],
      [[80, 65536], /ports\[1\]: 65536 is not a port/],
      [[8.5], /ports\[0\]: 8.5 is not a port/],
      [[80, 80], /ports: lists a port twice/],
    ])("ports %j", (ports, message) => {
      const stack = newStack();
      const a = new NetworkSegment(stack, "a");
      const b = new NetworkSegment(stack, "b");
      expect(() => a.allowFrom(b, ports)).toThrow(message);
    });

    it("refuses itself, a repeated flow and a segment of another stack", () => {
      const app = Testing.app();
      const stack = new FabricStack(app, "prod");
      const a = new NetworkSegment(stack, "a");
      const b = new NetworkSegment(stack, "b");
      expect(() => a.allowFrom(a, [80])).toThrow(/other: is this segment itself/);
      a.allowFrom(b, [80]);
      expect(() => a.allowFrom(b, [443])).toThrow(/'b' is already allowed into 'a': pass all its ports in one allowFrom call/);
      const elsewhere = new NetworkSegment(new FabricStack(app, "dr"), "c");
      expect(() => a.allowFrom(elsewhere, [80])).toThrow(/segment 'dr\/c' belongs to stack 'dr', not 'prod': declare it in the same FabricStack/);
    });
  });
});
