import { describe, expect, it } from 'vitest';
import { AddressPolicy, embeddedIpv4 } from '../src/uploads/address-policy.js';
import { isAllowEntry } from '../src/uploads/allow-entry.js';

const policy = new AddressPolicy();

describe('URL import address policy', () => {
  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '169.254.0.1',
    '100.64.0.1',
    '100.127.255.255',
    '0.0.0.0',
    '0.1.2.3',
    '255.255.255.255',
    '224.0.0.1',
    '239.255.255.250',
    '240.0.0.1',
    '192.0.2.1',
    '198.18.0.1',
    '::',
    '::1',
    'fe80::1',
    'febf::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '2001:db8::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    '::ffff:10.0.0.1',
    '::127.0.0.1',
    '::a00:1',
    '64:ff9b::127.0.0.1',
    '64:ff9b::a9fe:a9fe',
    '64:ff9b:1::a00:1',
    '2002:7f00:1::1',
    '2002:c0a8:101::',
    '2001:0:4136:e378::1',
  ])('refuses %s', (a) => expect(policy.allowsAddress(a)).toBe(false));

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
  ])('allows public %s', (a) => expect(policy.allowsAddress(a)).toBe(true));

  it('reads the IPv4 inside mapped, compatible, NAT64 and 6to4 forms', () => {
    expect(embeddedIpv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(embeddedIpv4('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(embeddedIpv4('::7f00:1')).toBe('127.0.0.1');
    expect(embeddedIpv4('64:ff9b::a9fe:a9fe')).toBe('169.254.169.254');
    expect(embeddedIpv4('2002:a00:1::')).toBe('10.0.0.1');
    expect(embeddedIpv4('::1')).toBeUndefined();
    expect(embeddedIpv4('2606:4700::1111')).toBeUndefined();
  });

  it('lets the allow-list name hosts, addresses and ranges (also in their IPv6-mapped forms)', () => {
    const p = new AddressPolicy(['127.0.0.1', '10.20.0.0/16', 'fd00::/8', 'Images.Example.']);
    expect(p.allowsAddress('127.0.0.1')).toBe(true);
    expect(p.allowsAddress('::ffff:127.0.0.1')).toBe(true);
    expect(p.allowsAddress('127.0.0.2')).toBe(false);
    expect(p.allowsAddress('10.20.3.4')).toBe(true);
    expect(p.allowsAddress('10.21.0.1')).toBe(false);
    expect(p.allowsAddress('fd00::5')).toBe(true);
    expect(p.allowsHost('images.example')).toBe(true);
    expect(p.allowsHost('other.example')).toBe(false);
  });

  it.each([
    ['images.example.com', true],
    ['127.0.0.1', true],
    ['10.0.0.0/8', true],
    ['fd00::/8', true],
    ['::1', true],
    ['10.0.0.0/33', false],
    ['fd00::/129', false],
    ['http://x', false],
    ['a b', false],
    ['', false],
    ['10.0.0.0/x', false],
  ])('allow entry %j valid: %s', (entry, ok) => expect(isAllowEntry(entry as string)).toBe(ok));
});
