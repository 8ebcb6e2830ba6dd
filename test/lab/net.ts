/**
 * Names and addresses the lab accepts. Every address the lab assigns must lie in a private or
 * documentation range, so a test can never look like it talks to the outside world, and every
 * name must fit the kernel's 15-character limit for interfaces.
 */
import { BlockList, isIP } from 'node:net';

export type Family = 4 | 6;

/** One address assigned to an interface of a lab host. */
export interface Address {
  ifname: string;
  /** The bare address, e.g. `10.200.1.2` or `fd00:7573:1::2`. */
  address: string;
  prefix: number;
  family: Family;
  /** `address/prefix` as given to `ip addr add`. */
  cidr: string;
}

const TEST_RANGES: [string, number, 'ipv4' | 'ipv6'][] = [
  ['10.0.0.0', 8, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'], // shared address space (carrier-grade NAT)
  ['198.18.0.0', 15, 'ipv4'], // benchmarking
  ['192.0.2.0', 24, 'ipv4'], // TEST-NET-1..3
  ['198.51.100.0', 24, 'ipv4'],
  ['203.0.113.0', 24, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['fc00::', 7, 'ipv6'], // unique local, e.g. fd00:7573::/32
  ['2001:db8::', 32, 'ipv6'], // documentation
  ['fe80::', 10, 'ipv6'],
];

const allowed = new BlockList();
for (const [net, prefix, type] of TEST_RANGES) allowed.addSubnet(net, prefix, type);

const RANGES_TEXT = TEST_RANGES.map(([n, p]) => `${n}/${p}`).join(', ');

export function familyOf(address: string): Family {
  const v = isIP(address);
  if (v === 4 || v === 6) return v;
  throw new Error(`lab: ${JSON.stringify(address)} is not an IP address`);
}

/** Throws unless `address` lies in one of the private/documentation ranges. */
export function checkTestAddress(address: string): void {
  const family = familyOf(address);
  if (!allowed.check(address, family === 4 ? 'ipv4' : 'ipv6'))
    throw new Error(
      `lab: address ${address} is outside the private test ranges (${RANGES_TEXT}); ` +
        'use e.g. 10.200.0.0/16 or fd00:7573::/32',
    );
}

/** Parses and checks `10.200.1.2/24` or `fd00:7573:1::2/64` for interface `ifname`. */
export function parseCidr(cidr: string, ifname: string): Address {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  if (!m) throw new Error(`lab: expected an address with a prefix length like 10.200.1.2/24, got ${cidr}`);
  const address = m[1]!;
  const prefix = Number(m[2]);
  const family = familyOf(address);
  if (prefix > (family === 4 ? 32 : 128))
    throw new Error(`lab: prefix length /${prefix} is too long in ${cidr}`);
  checkTestAddress(address);
  return { ifname, address, prefix, family, cidr: `${address}/${prefix}` };
}

/** Role names become part of namespace names (`ul<run>-<role>`), so they are short. */
export function checkRole(name: string): void {
  if (!/^[a-z][a-z0-9-]{0,7}$/.test(name))
    throw new Error(
      `lab: name ${JSON.stringify(name)} must be 1-8 characters of a-z, 0-9 and '-', starting with a letter`,
    );
}

export function checkIfname(name: string): void {
  if (!/^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$/.test(name))
    throw new Error(
      `lab: interface name ${JSON.stringify(name)} must be 1-15 characters, starting with a letter`,
    );
}

export function checkMac(mac: string): void {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac))
    throw new Error(`lab: MAC address ${JSON.stringify(mac)} must look like 02:00:5e:72:00:64`);
  if ((Number.parseInt(mac.slice(0, 2), 16) & 1) === 1)
    throw new Error(`lab: MAC address ${mac} is a multicast address; use a unicast one like 02:...`);
}

/** `cidr` or a list of them, as the link/attach options accept. */
export function toList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
