import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';

/**
 * The web UI's headers: scripts, styles and requests only from this origin, no inline code,
 * no framing, no referrer (a URL never carries a secret, but leak nothing anyway).
 */
export const webContentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

/** `apps/web/dist` beside this package in the repository (where `pnpm build` puts the UI). */
export function defaultWebDirectory(): string | undefined {
  const fromEnvironment = process.env['KEYWARD_WEB_DIR'];
  if (fromEnvironment) return fromEnvironment;
  const candidate = fileURLToPath(new URL('../../web/dist/', import.meta.url));
  return existsSync(join(candidate, 'index.html')) ? candidate : undefined;
}

/** Serves the built UI at `/` (GET only) with a strict Content-Security-Policy. */
export function createWebRoutes(webDirectory: string | undefined) {
  const app = new Hono();
  app.get('/*', (c, next) => {
    if (c.req.path.startsWith('/api/')) return next();
    c.header('Content-Security-Policy', webContentSecurityPolicy);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('X-Frame-Options', 'DENY');
    c.header('Cache-Control', 'no-store');
    if (!webDirectory || !existsSync(join(webDirectory, 'index.html'))) {
      return c.text(
        'No keyward web UI to serve: the npm packages do not include it yet. It is built in a keyward checkout (pnpm build puts it in apps/web/dist): run keyward serve from there, or set KEYWARD_WEB_DIR to that folder.',
        404,
      );
    }
    const relative = c.req.path === '/' ? 'index.html' : decodeURIComponent(c.req.path.slice(1));
    const path = normalize(join(webDirectory, relative));
    const inside = path.startsWith(normalize(webDirectory).replace(/\/?$/, sep));
    const file = inside && existsSync(path) && statSync(path).isFile() ? path : undefined;
    if (!file) return c.text('Not found.', 404);
    c.header('Content-Type', contentTypes[extname(file)] ?? 'application/octet-stream');
    return c.body(readFileSync(file));
  });
  return app;
}
