import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  ca: string;
  key: string;
  cert: string;
}

/** A throwaway CA and a server certificate for localhost / 127.0.0.1 / ::1, made with openssl. */
export function createTestCertificates(): TestCertificates {
  const directory = mkdtempSync(join(tmpdir(), 'keyward-tls-'));
  const file = (name: string) => join(directory, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  try {
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=keyward test CA',
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.pem'),
    );
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-keyout',
      file('server.key'),
      '-out',
      file('server.csr'),
    );
    writeFileSync(
      file('ext.cnf'),
      'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n',
    );
    openssl(
      'x509',
      '-req',
      '-in',
      file('server.csr'),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      file('ext.cnf'),
      '-out',
      file('server.pem'),
    );
    return {
      ca: readFileSync(file('ca.pem'), 'utf8'),
      key: readFileSync(file('server.key'), 'utf8'),
      cert: readFileSync(file('server.pem'), 'utf8'),
    };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

export interface EchoedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: string;
}

export interface EchoServer {
  server: Server;
  port: number;
  /** Custom responses by path; default echoes the request as JSON. */
  routes: Map<
    string,
    (request: EchoedRequest) => { status: number; headers?: Record<string, string>; body: string }
  >;
  close(): Promise<void>;
}

/** An HTTPS server on loopback that answers with what it received (like the reference's test upstream). */
export async function startEchoServer(
  certificates: TestCertificates,
  host = '127.0.0.1',
): Promise<EchoServer> {
  const routes: EchoServer['routes'] = new Map();
  const server = createServer({ key: certificates.key, cert: certificates.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const headers = { ...req.headers } as Record<string, string | string[]>;
      const echoed: EchoedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      const route = routes.get((req.url ?? '').split('?')[0] as string);
      if (route) {
        const answer = route(echoed);
        res.writeHead(answer.status, answer.headers ?? { 'content-type': 'application/json' });
        res.end(answer.body);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(echoed));
    });
  });
  server.listen(0, host);
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    routes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
