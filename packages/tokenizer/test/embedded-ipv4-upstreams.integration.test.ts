import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../src/audit-log.js';
import { type RunningTokenizerServer, startTokenizerServer } from '../src/proxy-server.js';
import { generateOpenKey, sealKeyFromOpenKey } from '../src/sealed-box.js';
import { bearerDigest, sealSecret } from '../src/secret.js';
import { proxyRequest } from './proxy-client.js';

// Through the real proxy with its secure defaults: IPv6 literals that carry a refused IPv4
// address are refused before anything is dialled (on a network with NAT64,
// http://[64:ff9b::a00:1]/ would otherwise reach 10.0.0.1).

const OPEN_KEY = generateOpenKey();
const PROXY_TOKEN = 'embedded-ipv4-proxy-token';
// No host rules: the address policy is the only thing between the client and the target.
const token = sealSecret(
  {
    processor: { type: 'inject', token: 'embedded-ipv4-secret' },
    auth: { type: 'bearer', digest: bearerDigest(PROXY_TOKEN) },
  },
  sealKeyFromOpenKey(OPEN_KEY),
);
const headers = { 'Proxy-Tokenizer': token, 'Proxy-Authorization': `Bearer ${PROXY_TOKEN}` };

let proxy: RunningTokenizerServer;
const audit: AuditEntry[] = [];

beforeAll(async () => {
  proxy = await startTokenizerServer({
    openKey: OPEN_KEY,
    listenAddress: '127.0.0.1:0',
    auditLog: (entry) => audit.push(entry),
    log: () => {},
    upstreamConnectTimeoutMs: 2_000,
  });
});

afterAll(async () => {
  await proxy?.close();
});

describe('upstreams given as IPv6 addresses that embed an IPv4 address', () => {
  it.each([
    ['NAT64, 10.0.0.1', '64:ff9b::a00:1'],
    ['NAT64 with a dotted tail, 10.0.0.1', '64:ff9b::10.0.0.1'],
    ['NAT64, the metadata address 169.254.169.254', '64:ff9b::a9fe:a9fe'],
    ['NAT64, loopback', '64:ff9b::7f00:1'],
    ['local-use NAT64', '64:ff9b:1::a00:1'],
    ['IPv4-compatible', '::a00:1'],
    ['IPv4-translated', '::ffff:0:a00:1'],
    ['6to4', '2002:a00:1::1'],
    ['Teredo', '2001:0:4136:e378:8000:63bf:f5ff:fffe'],
  ])('%s ([%s]) is refused with 400 before dialling', async (_label, address) => {
    const response = await proxyRequest(proxy.url, `http://[${address}]/v1/items`, { headers });
    expect(response.status).toBe(400);
    expect(response.body).toBe(`bad request: dialing ${address} denied`);
    expect(audit.at(-1)).toMatchObject({ decision: 'denied', error: 'UPSTREAM_DENIED', status: 400 });
  });

  it('NAT64 of a public IPv4 address is not refused by the address policy (DNS64 networks use it)', async () => {
    // 192.0.2.1 (documentation) is outside the deny list; nothing answers there, so the
    // proxy tries to dial and reports an upstream failure instead of a refusal.
    const response = await proxyRequest(proxy.url, 'http://[64:ff9b::c000:201]:8443/', { headers });
    expect([502, 504]).toContain(response.status);
    expect(response.body).not.toContain('denied');
  });
});
