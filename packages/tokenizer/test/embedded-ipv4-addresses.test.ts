import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createGuardedLookup, isPrivateAddress, UpstreamDeniedError } from '../src/address-policy.js';

// IPv6 addresses that carry an IPv4 address (NAT64, IPv4-compatible, IPv4-translated, 6to4,
// Teredo) must not let a client reach an address the IPv4 rules refuse. Every property runs
// over every way of writing the address (compressed or not, zero-padded, upper case, dotted).

const byte = fc.integer({ min: 0, max: 255 });
const group = fc.integer({ min: 0, max: 0xffff });
const ipv4Bytes = fc.oneof(
  fc.tuple(byte, byte, byte, byte),
  // Biased towards the refused ranges, so both outcomes of the comparisons come up often.
  fc
    .tuple(
      fc.constantFrom([10], [127], [169, 254], [172, 16], [192, 168], [100, 64], [0], [224], [240]),
      byte,
      byte,
      byte,
    )
    .map(([prefix, ...rest]) => [...prefix, ...rest].slice(0, 4) as [number, number, number, number]),
);
const dotted = (bytes: readonly number[]) => bytes.join('.');

interface Spelling {
  compress: boolean;
  pad: boolean;
  upper: boolean;
  dottedTail: boolean;
}
const spelling: fc.Arbitrary<Spelling> = fc.record({
  compress: fc.boolean(),
  pad: fc.boolean(),
  upper: fc.boolean(),
  dottedTail: fc.boolean(),
});

/** Writes eight 16-bit groups as IPv6 text in the given spelling. */
function ipv6Text(groups: readonly number[], style: Spelling): string {
  let parts = groups.map((value) => value.toString(16).padStart(style.pad ? 4 : 1, '0'));
  let tail: string[] = [];
  if (style.dottedTail) {
    const high = groups[6] as number;
    const low = groups[7] as number;
    tail = [dotted([high >> 8, high & 255, low >> 8, low & 255])];
    parts = parts.slice(0, 6);
  }
  let text: string;
  const zeroRun = longestZeroRun(groups.slice(0, parts.length));
  if (style.compress && zeroRun.length >= 2) {
    const head = parts.slice(0, zeroRun.start).join(':');
    const rest = [...parts.slice(zeroRun.start + zeroRun.length), ...tail].join(':');
    text = `${head}::${rest}`;
  } else text = [...parts, ...tail].join(':');
  return style.upper ? text.toUpperCase() : text;
}

function longestZeroRun(groups: readonly number[]): { start: number; length: number } {
  let best = { start: 0, length: 0 };
  for (let start = 0; start < groups.length; start++) {
    let length = 0;
    while (start + length < groups.length && groups[start + length] === 0) length++;
    if (length > best.length) best = { start, length };
  }
  return best;
}

const split = (bytes: readonly number[]) => [
  ((bytes[0] as number) << 8) | (bytes[1] as number),
  ((bytes[2] as number) << 8) | (bytes[3] as number),
];

function checked(address: string): string {
  // The spellings are only useful if Node reads them as IPv6 addresses.
  expect(isIP(address), address).toBe(6);
  return address;
}

describe('IPv6 addresses that embed an IPv4 address', () => {
  it.each([
    ['NAT64 64:ff9b::/96', [0x64, 0xff9b, 0, 0, 0, 0]],
    ['IPv4-mapped ::ffff:0:0/96', [0, 0, 0, 0, 0, 0xffff]],
  ])('%s is refused exactly when the embedded IPv4 address is', (_label, prefix) => {
    fc.assert(
      fc.property(ipv4Bytes, spelling, (bytes, style) => {
        const address = checked(ipv6Text([...prefix, ...split(bytes)], style));
        expect(isPrivateAddress(address), address).toBe(isPrivateAddress(dotted(bytes)));
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ['IPv4-compatible ::/96', fc.constant([0, 0, 0, 0, 0, 0])],
    ['IPv4-translated ::ffff:0:0:0/96', fc.constant([0, 0, 0, 0, 0xffff, 0])],
    [
      'local-use NAT64 64:ff9b:1::/48',
      fc.tuple(group, group, group).map((rest) => [0x64, 0xff9b, 1, ...rest]),
    ],
    ['6to4 2002::/16', fc.tuple(group, group, group, group, group).map((rest) => [0x2002, ...rest])],
    [
      'Teredo 2001::/32 (server IPv4, flags, port, client IPv4 XORed)',
      fc.tuple(group, group, group, group).map((rest) => [0x2001, 0, ...rest]),
    ],
  ])('%s is refused whatever it embeds', (_label, prefix) => {
    fc.assert(
      fc.property(prefix, ipv4Bytes, spelling, (head, bytes, style) => {
        const address = checked(ipv6Text([...head, ...split(bytes)], style));
        expect(isPrivateAddress(address), address).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('6to4 and Teredo refuse the IPv4 addresses where they carry them', () => {
    fc.assert(
      fc.property(ipv4Bytes, ipv4Bytes, group, group, spelling, (embedded, server, flags, port, style) => {
        const sixToFour = checked(ipv6Text([0x2002, ...split(embedded), 1, 0, 0, 0, 1], style));
        const client = split(embedded.map((value) => value ^ 0xff));
        const teredo = checked(ipv6Text([0x2001, 0, ...split(server), flags, port, ...client], style));
        expect(isPrivateAddress(sixToFour), sixToFour).toBe(true);
        expect(isPrivateAddress(teredo), teredo).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('global unicast outside those prefixes is not refused', () => {
    const globalUnicast = fc
      .tuple(fc.integer({ min: 0x2400, max: 0x2fff }), fc.array(group, { minLength: 7, maxLength: 7 }))
      .map(([first, rest]) => [first, ...rest]);
    fc.assert(
      fc.property(globalUnicast, spelling, (groups, style) => {
        const address = checked(ipv6Text(groups, style));
        expect(isPrivateAddress(address), address).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it.each([
    ['64:ff9b::a00:1', true],
    ['64:ff9b::10.0.0.1', true],
    ['64:FF9B:0:0:0:0:A9FE:A9FE', true], // 169.254.169.254, the cloud metadata address
    ['64:ff9b::7f00:1', true],
    ['64:ff9b::', true], // 0.0.0.0
    ['64:ff9b::808:808', false], // 8.8.8.8
    ['64:ff9b::c000:201', false], // 192.0.2.1
    ['64:ff9b:1::a00:1', true],
    ['::a00:1', true],
    ['::8.8.8.8', true],
    ['::ffff:0:a00:1', true],
    ['2002:a00:1::', true],
    ['2002:808:808::1', true],
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', true], // Teredo, client 10.0.0.1
    ['2001:4860:4860::8888', false], // not Teredo: only 2001:0::/32 is
    ['2001:db8::1', false],
  ])('%s refused: %s', (address, refused) => {
    expect(isPrivateAddress(address)).toBe(refused);
  });

  it('the guarded lookup refuses them too (a name that resolves to one)', async () => {
    const lookup = createGuardedLookup();
    const resolve = (hostname: string) =>
      new Promise<{ error: Error | null; address: unknown }>((done) =>
        lookup(hostname, {}, (error, address) => done({ error, address })),
      );
    for (const address of ['64:ff9b::a00:1', '2002:a00:1::', '::ffff:0:a00:1']) {
      const result = await resolve(address);
      expect(result.error, address).toBeInstanceOf(UpstreamDeniedError);
    }
    expect(await resolve('64:ff9b::c000:201')).toEqual({ error: null, address: '64:ff9b::c000:201' });
  });
});
