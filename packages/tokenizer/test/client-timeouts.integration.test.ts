import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coarseClock } from '../src/client-connection.js';
import { type RunningTokenizerServer, startTokenizerServer } from '../src/proxy-server.js';
import { generateOpenKey } from '../src/sealed-box.js';

// Client-side timeouts of the proxy's own HTTP/1.1 server, with short limits so the tests
// finish in seconds. The proxy checks them on a one-second sweep.

let proxy: RunningTokenizerServer;
let port: number;

beforeAll(async () => {
  proxy = await startTokenizerServer({
    openKey: generateOpenKey(),
    listenAddress: '127.0.0.1:0',
    headersTimeoutMs: 1000,
    keepAliveTimeoutMs: 1000,
    auditLog: false,
    log: () => {},
  });
  port = Number(new URL(proxy.url).port);
});

afterAll(async () => {
  await proxy.close();
});

/** Opens a raw connection and collects everything the proxy sends until it closes. */
function open(): Promise<{ socket: Socket; received: () => string; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    const closed = new Promise<number>((resolveClosed) =>
      socket.once('close', () => resolveClosed(Date.now())),
    );
    socket.once('connect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

describe('client connection timeouts', () => {
  it('answers 408 and closes when a request head is not completed in time (slow loris)', async () => {
    const { socket, received, closed } = await open();
    const started = Date.now();
    socket.write('GET http://example.com/ HTTP/1.1\r\nHost: exam');
    const closedAt = await closed;
    expect(received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(received()).toMatch(/\r\nconnection: close\r\n/i);
    expect(closedAt - started).toBeGreaterThanOrEqual(1000);
    expect(closedAt - started).toBeLessThan(4000);
  });

  it('keeps an idle connection open between requests, then closes it after the keep-alive timeout', async () => {
    const { socket, received, closed } = await open();
    // Refused without contacting any upstream (no Proxy-Tokenizer): the connection stays usable.
    socket.write('GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received()).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    // The idle time starts when the proxy finishes its answer, which is after this point: a
    // floor measured from here holds however late this process's timers fire (a floor measured
    // from after a sleep did not: under load the sleep overran and the floor came out short).
    const secondSentAt = Date.now();
    socket.write('GET http://example.com/again HTTP/1.1\r\nHost: example.com\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received().match(/HTTP\/1\.1 400 /g)).toHaveLength(2);
    const closedAt = await closed;
    expect(closedAt - secondSentAt).toBeGreaterThanOrEqual(1000);
    expect(closedAt - secondSentAt).toBeLessThan(4000);
  });

  it('does not start the keep-alive timeout from a stale clock (answer late in a sweep period)', async () => {
    const { socket, received, closed } = await open();
    // Just after a sweep, then most of a sweep period later: the coarse clock is ~700 ms old.
    const before = coarseClock.now;
    for (let turn = 0; turn < 300 && coarseClock.now === before; turn++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    const sweptAt = coarseClock.now;
    await new Promise((resolve) => setTimeout(resolve, 700));
    const sentAt = Date.now();
    socket.write('GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, sweptAt + 980 - Date.now())));
    // A busy machine: the next sweep, due a second after the last, runs 20 ms late.
    while (Date.now() < sweptAt + 1020) {}
    const closedAt = await closed;
    expect(received()).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    // Stamped with the stale clock, the idle time looked 700 ms longer than it was and the
    // connection was cut about 300 ms after the answer.
    expect(closedAt - sentAt).toBeGreaterThanOrEqual(1000);
    expect(closedAt - sentAt).toBeLessThan(4000);
  });

  it('trickling empty lines does not keep a connection alive: the head timeout still applies', async () => {
    const { socket, received, closed } = await open();
    const started = Date.now();
    const trickle = setInterval(() => socket.writable && socket.write('\r\n'), 200);
    const closedAt = await closed;
    clearInterval(trickle);
    expect(received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(closedAt - started).toBeLessThan(4000);
  });

  it('a client that keeps sending after a refusal that closes the connection is cut after a grace period', async () => {
    const { socket, received, closed } = await open();
    socket.write('GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nBad Header: x\r\n\r\n');
    const started = Date.now();
    const trickle = setInterval(() => socket.writable && socket.write('x'), 200);
    const closedAt = await closed;
    clearInterval(trickle);
    expect(received()).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(closedAt - started).toBeLessThan(4000);
  });

  it('refuses an HTTP/1.1 request without a Host header (RFC 9112 §3.2); HTTP/1.0 may omit it', async () => {
    const { socket, received } = await open();
    socket.write('GET http://example.com/ HTTP/1.1\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received()).toMatch(
      /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*\r\n\r\nbad request: missing Host header$/,
    );
    const legacy = await open();
    legacy.socket.write('GET http://example.com/ HTTP/1.0\r\n\r\n');
    await legacy.closed;
    // Refused for its missing Proxy-Tokenizer instead (no secrets), not for the Host.
    expect(legacy.received()).toMatch(/\r\n\r\nbad request$/);
    socket.destroy();
  });

  it('a request that asks for Connection: close gets its answer and then the close', async () => {
    const { socket, received, closed } = await open();
    const started = Date.now();
    socket.write('GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
    const closedAt = await closed;
    expect(received()).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*connection: close\r\n/i);
    expect(closedAt - started).toBeLessThan(900);
  });
});
