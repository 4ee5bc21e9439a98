import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { webContentSecurityPolicy } from '../src/web-routes.js';
import { createHarness, testToken } from './test-app.js';

function webDirectory(): string {
  const directory = join(mkdtempSync(join(tmpdir(), 'keyward-web-')), 'dist');
  mkdirSync(directory);
  writeFileSync(join(directory, 'index.html'), '<!doctype html><title>keyward</title>');
  writeFileSync(join(directory, 'app.js'), 'console.log(1)');
  writeFileSync(join(directory, '..', 'outside.txt'), 'not served');
  return directory;
}

describe('the web UI routes', () => {
  it('serve the built UI at / with a strict Content-Security-Policy and no token', async () => {
    const { app } = createHarness({ app: { webDirectory: webDirectory() } });
    const page = await app.request('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toBe(webContentSecurityPolicy);
    expect(webContentSecurityPolicy).toContain("script-src 'self'");
    expect(webContentSecurityPolicy).not.toContain('unsafe-inline');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const script = await app.request('/app.js');
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect(await script.text()).toBe('console.log(1)');
  });

  it('refuse paths outside the directory, and leave /api alone', async () => {
    const { app } = createHarness({ app: { webDirectory: webDirectory() } });
    expect((await app.request('/..%2Foutside.txt')).status).toBe(404);
    expect(
      (await app.request('/api/nothing-here', { headers: { authorization: `Bearer ${testToken}` } })).status,
    ).toBe(404);
    expect((await app.request('/api/instances')).status).toBe(401);
  });

  it('say where a UI comes from when there is none (an npm install, or a checkout before pnpm build)', async () => {
    const { app } = createHarness();
    const page = await app.request('/');
    expect(page.status).toBe(404);
    const text = await page.text();
    expect(text).toContain('the npm packages do not include it');
    expect(text).toContain('pnpm build');
    expect(text).toContain('KEYWARD_WEB_DIR');
  });
});
