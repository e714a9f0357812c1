import { BlockList, isIP } from 'node:net';

/**
 * IPv4 ranges a URL import may not reach: "this network", private, CGNAT, loopback,
 * link-local (with the 169.254.169.254 metadata service), IETF/documentation/benchmark nets,
 * multicast, reserved and broadcast.
 */
const BLOCKED_V4: Array<[string, number]> = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];

/**
 * IPv6 ranges refused outright: unspecified, loopback, discard, Teredo (whose IPv4 is hidden),
 * documentation, ULA, link-local, deprecated site-local, multicast. Forms that embed an IPv4
 * address (mapped, compatible, NAT64, 6to4) are judged by that address instead.
 */
const BLOCKED_V6: Array<[string, number]> = [
  ['::', 128],
  ['::1', 128],
  ['100::', 64],
  ['2001::', 32],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
];

function blockList(v4: Array<[string, number]>, v6: Array<[string, number]>): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of v4) list.addSubnet(net, prefix, 'ipv4');
  for (const [net, prefix] of v6) list.addSubnet(net, prefix, 'ipv6');
  return list;
}

/** Parses an IPv6 address (with `::` and a trailing dotted IPv4) into 16 bytes; undefined if it is not one. */
export function ipv6Bytes(address: string): Buffer | undefined {
  if (isIP(address) !== 6) return undefined;
  let s = address.toLowerCase();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const groups: number[] = [];
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const gap = s.indexOf('::');
  if (gap >= 0) {
    const head = parse(s.slice(0, gap));
    const tail = parse(s.slice(gap + 2));
    groups.push(...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail);
  } else groups.push(...parse(s));
  if (groups.length !== 8) return undefined;
  const bytes = Buffer.alloc(16);
  groups.forEach((g, i) => bytes.writeUInt16BE(g, i * 2));
  return bytes;
}

const v4 = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/**
 * The IPv4 address an IPv6 one carries, for the forms that route to it: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96 and 64:ff9b:1::/48) and
 * 6to4 (2002:aabb:ccdd::/16).
 */
export function embeddedIpv4(address: string): string | undefined {
  const b = ipv6Bytes(address);
  if (!b) return undefined;
  const zeros = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4(b, 12);
  // ::/96 compatible, except :: and ::1, which the IPv6 list judges.
  if (zeros(0, 12) && !zeros(12, 15)) return v4(b, 12);
  if (b.readUInt16BE(0) === 0x64 && b.readUInt16BE(2) === 0xff9b && zeros(4, 12)) return v4(b, 12);
  if (b.readUInt16BE(0) === 0x64 && b.readUInt16BE(2) === 0xff9b && b.readUInt16BE(4) === 1) return v4(b, 12);
  if (b.readUInt16BE(0) === 0x2002) return v4(b, 2);
  return undefined;
}

/**
 * Which addresses a URL import may connect to: everything public, nothing loopback, private,
 * link-local, CGNAT, multicast, reserved or metadata, unless `allow` names the host or a range
 * holding the address. Built once from the configuration.
 */
export class AddressPolicy {
  private blocked = blockList(BLOCKED_V4, BLOCKED_V6);
  private allowed = new BlockList();
  private allowedHosts = new Set<string>();

  /** `allow`: entries valid under `isAllowEntry` (host names, addresses, CIDRs; see allow-entry.ts). */
  constructor(allow: readonly string[] = []) {
    for (const entry of allow) {
      const slash = entry.indexOf('/');
      if (slash >= 0) {
        const ip = entry.slice(0, slash);
        this.allowed.addSubnet(ip, Number(entry.slice(slash + 1)), isIP(ip) === 4 ? 'ipv4' : 'ipv6');
      } else if (isIP(entry)) this.allowed.addAddress(entry, isIP(entry) === 4 ? 'ipv4' : 'ipv6');
      else this.allowedHosts.add(entry.toLowerCase().replace(/\.$/, ''));
    }
  }

  /** True when the allow-list names this host (a name as written in the URL, case-insensitive). */
  allowsHost(hostname: string): boolean {
    return this.allowedHosts.has(hostname.toLowerCase().replace(/\.$/, ''));
  }

  /** True when a connection to `address` (an IPv4 or IPv6 literal) is permitted. */
  allowsAddress(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.allowed.check(address, type)) return true;
    const inner = family === 6 ? embeddedIpv4(address) : undefined;
    if (inner !== undefined) return this.allowed.check(inner, 'ipv4') || !this.blocked.check(inner, 'ipv4');
    return !this.blocked.check(address, type);
  }
}
