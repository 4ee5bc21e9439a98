import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createThrowawayCertificates, type ThrowawayCertificates } from '../src/throwaway-certificates.js';

/** A throwaway CA and a server certificate for localhost / 127.0.0.1 / ::1. */
export function createLoopbackCertificates(): ThrowawayCertificates {
  return createThrowawayCertificates({
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    validDays: 2,
  });
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
    (request: EchoedRequest) => { status: number; headers?: Record<string, string>; body: string | Buffer }
  >;
  close(): Promise<void>;
}

/** An HTTPS server on loopback that answers with what it received (like the reference's test upstream). */
export async function startEchoServer(
  certificates: ThrowawayCertificates,
  host = '127.0.0.1',
): Promise<EchoServer> {
  const routes: EchoServer['routes'] = new Map();
  const server = createServer(
    { key: certificates.serverKeyPem, cert: certificates.serverCertificatePem },
    (req, res) => {
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
    },
  );
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
