import { createServer, type Server } from 'node:http';
import { type MetricsSnapshot, renderMetrics } from './metrics.js';

export interface AdminServerOptions {
  sealKey: string;
  /** Current counters (in cluster mode: gathered from every worker). */
  metrics: () => MetricsSnapshot | Promise<MetricsSnapshot>;
  /** False while the proxy cannot serve (for example no live worker). */
  healthy?: () => boolean;
}

/** `/health` and Prometheus `/metrics`, on a listener separate from the proxy. */
export function createAdminServer(options: AdminServerOptions): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/health') {
      const healthy = options.healthy?.() ?? true;
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: healthy ? 'ok' : 'unavailable', sealKey: options.sealKey }));
      return;
    }
    if (req.method === 'GET' && path === '/metrics') {
      Promise.resolve(options.metrics()).then(
        (snapshot) => {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
          res.end(renderMetrics(snapshot));
        },
        () => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('metrics unavailable');
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
}
