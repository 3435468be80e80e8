/** CIDR checks for egress allowlists: IPv4 or IPv6, prefix in range, no host bits set. */
import ipaddr from "ipaddr.js";
import { isIPv4, isIPv6 } from "node:net";

export type CidrResult = { readonly ok: true } | { readonly ok: false; readonly message: string };

export function checkCidr(text: unknown): CidrResult {
  const slash = typeof text === "string" ? text.indexOf("/") : -1;
  if (typeof text !== "string" || slash < 0) {
    return { ok: false, message: `${JSON.stringify(text)} is not a CIDR: write an address and a prefix length, e.g. '10.20.0.0/16' or '203.0.113.7/32'` };
  }
  const address = text.slice(0, slash);
  const prefix = text.slice(slash + 1);
  // node:net is strict about the address (no shortened or zero-padded IPv4 forms ipaddr.js tolerates).
  const v4 = isIPv4(address);
  if (!v4 && !isIPv6(address)) return { ok: false, message: `'${address}' in '${text}' is not an IPv4 or IPv6 address` };
  const bits = v4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bits) {
    return { ok: false, message: `prefix '/${prefix}' in '${text}' is not a length from 0 to ${bits}` };
  }
  const network = v4 ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text);
  const given = ipaddr.parse(address);
  if (network.toNormalizedString() !== given.toNormalizedString()) {
    return { ok: false, message: `'${text}' has host bits set: write the network address, '${network.toString()}/${Number(prefix)}'` };
  }
  return { ok: true };
}
