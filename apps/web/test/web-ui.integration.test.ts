import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createJsonLogger, type RunningServer, readApiToken, startServer } from '@keyward/api';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs build script without types.
import { buildWeb } from '../scripts/build-web.mjs';

// The whole UI in Debian's Chromium (playwright-core, flags from MACHINE.md) against the real API
// server (`startServer`, default registry: the local target on podman and the tokenizer) with the
// locally built images. After every step the page's DOM, input values, storage and URL are
// searched for the credential values.
const chromiumPath = '/usr/bin/chromium';
const artifacts = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const name = `web-e2e-${randomBytes(3).toString('hex')}`;
const firstSecret = `kwtest-first-${randomBytes(12).toString('hex')}`;
const addedSecret = `kwtest-added-${randomBytes(12).toString('hex')}`;
const secrets = [firstSecret, addedSecret];
const agentImage = 'localhost/keyward-agent-standin:0.1.0';

async function findSecrets(page: Page): Promise<string[]> {
  const surface = await page.evaluate(() => {
    const values = [...document.querySelectorAll('input, textarea, select')].map(
      (element) => (element as HTMLInputElement).value,
    );
    const storage = (store: Storage) =>
      Array.from(
        { length: store.length },
        (_, index) => `${store.key(index)}=${store.getItem(store.key(index)!)}`,
      );
    return [
      document.documentElement.outerHTML,
      ...values,
      ...storage(sessionStorage),
      ...storage(localStorage),
      document.cookie,
      location.href,
      history.state === null ? '' : JSON.stringify(history.state),
    ].join('\n');
  });
  return secrets.filter((secret) => surface.includes(secret));
}

describe('the web UI in Chromium against the API on real podman', () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let token: string;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  // The steps build on each other: after a failure, the next ones say so instead of timing out.
  let failedStep: string | undefined;
  afterEach((context) => {
    if (context.task.result?.state === 'fail') failedStep ??= context.task.name;
  });
  beforeEach(() => {
    if (failedStep) throw new Error(`an earlier step failed: ${failedStep}`);
  });

  const shot = async (file: string) => {
    await page.screenshot({ path: join(artifacts, file), fullPage: true });
  };
  const expectNoSecret = async (step: string) => {
    expect(await findSecrets(page), `a secret in the page after: ${step}`).toEqual([]);
  };

  beforeAll(async () => {
    if (!existsSync(chromiumPath)) {
      throw new Error(`${chromiumPath} is missing: apt-get install -y chromium (scripts/setup.sh does it)`);
    }
    mkdirSync(artifacts, { recursive: true });
    const sizes = await buildWeb({ quiet: true });
    console.log(`web bundle: ${JSON.stringify(sizes)}`);
    const dataDirectory = mkdtempSync(join(tmpdir(), 'keyward-web-e2e-'));
    server = await startServer({
      port: 0,
      dataDirectory,
      webDirectory: fileURLToPath(new URL('../dist/', import.meta.url)),
      // The VMs are shared and podman answers slowly under load.
      detectTimeoutMilliseconds: 60_000,
      logger: createJsonLogger({ write: () => {} }),
      print: () => {},
    });
    token = readApiToken(dataDirectory)!;
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('console', (message) => {
      if (/Content Security Policy|Content-Security-Policy/i.test(message.text()))
        cspViolations.push(message.text());
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
    if (server) {
      // Only what this test made: its own unique instance, if a step left it behind (retried
      // while a rotation it started still holds the instance: 409).
      for (let attempt = 0; attempt < 60; attempt++) {
        const response = await fetch(`${server.url}/api/instances/${name}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${token}` },
        }).catch(() => undefined);
        if (response?.status !== 409) break;
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
      await server.close();
    }
  });

  it('asks for the token once, says when it is wrong, keeps it in sessionStorage only', async () => {
    const response = await page.goto(server.url);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.getByLabel('API token').fill('kw_wrong-token');
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('Wrong token');
    await shot('01-token-wrong.png');
    await page.getByLabel('API token').fill(token);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Instances' }).waitFor();
    expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual(['keyward.apiToken']);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(page.url()).not.toContain(token);
  });

  it('deploy: the API validation message sits next to the field', async () => {
    await page.goto(`${server.url}/#/deploy`);
    await page.getByRole('heading', { name: 'Target', exact: true }).waitFor({ timeout: 90_000 });
    await page.getByLabel('Instance name').fill('Not_A_Label');
    await page.getByLabel('Agent image').fill(agentImage);
    await page.getByLabel('Agent port').fill('18789');
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    const nameField = page.locator('.field', { has: page.getByLabel('Instance name') });
    await expect.poll(() => nameField.locator('.field-error').textContent()).toContain('DNS-1123 label');
    expect(await page.getByLabel('Instance name').getAttribute('aria-invalid')).toBe('true');
    await shot('02-deploy-validation.png');
  });

  it('deploys with a credential and shows the steps live, then the instance running', async () => {
    await page.getByLabel('Instance name').fill(name);
    await page.getByLabel('Skills directory').fill('/home/node/skills');
    const proxy = page.locator('section.credential-proxy');
    await proxy.getByRole('button', { name: '+ Add credential' }).click();
    await proxy.getByLabel(/^Name/).fill('github');
    const secretInput = proxy.getByLabel(/^Secret/);
    expect(await secretInput.getAttribute('type')).toBe('password');
    expect(await secretInput.getAttribute('autocomplete')).toBe('off');
    expect(await secretInput.getAttribute('spellcheck')).toBe('false');
    await secretInput.fill(firstSecret);
    await proxy.getByLabel('Allowed hosts').fill('api.github.com');
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await page.locator('.steps .step').first().waitFor({ timeout: 60_000 });
    await expectNoSecret('deploy submitted');
    await shot('03-deploy-progress.png');
    const summary = page.locator('.job-summary');
    await expect
      .poll(() => summary.getAttribute('class'), { timeout: 300_000, interval: 1000 })
      .toMatch(/success|failure/);
    await shot('04-deploy-done.png');
    expect(await summary.textContent()).toContain('is deployed and running');
    expect(await page.locator('.steps .step').count()).toBeGreaterThan(2);
    await expectNoSecret('deploy finished');

    await page.getByRole('link', { name: `Open ${name}` }).click();
    const row = page.locator(`tr[data-instance="${name}"]`);
    await row.waitFor({ timeout: 60_000 });
    expect(await row.textContent()).toMatch(/running/);
    expect(await row.textContent()).toMatch(/proxy-only/);
    expect(await row.textContent()).toMatch(/tokenizer/);
    await page.locator('.credential-name', { hasText: 'github' }).waitFor({ timeout: 60_000 });
    await shot('05-instance.png');
    await expectNoSecret('instance page');
  });

  it('adds a credential as one rotation, then removes it', async () => {
    const panel = page.locator('form.credentials');
    await panel.getByRole('button', { name: '+ Add new credential' }).click();
    await panel.getByLabel(/^Name/).fill('extra');
    await panel.getByLabel(/^Secret/).fill(addedSecret);
    await panel.getByLabel('Allowed hosts').fill('api.example.com');
    await panel.getByRole('button', { name: /Apply changes/ }).click();
    // Once the API has accepted the change (its job shows), the secret is gone from the page.
    await page.locator('.credentials-panel .job').waitFor({ timeout: 60_000 });
    await expectNoSecret('rotation accepted');
    const summary = page.locator('.credentials-panel .job-summary');
    await expect
      .poll(() => summary.getAttribute('class'), { timeout: 300_000, interval: 1000 })
      .toMatch(/success|failure/);
    expect(await summary.textContent()).toContain('Applied');
    await page.locator('.credential-name', { hasText: 'extra' }).waitFor({ timeout: 60_000 });
    await shot('06-credential-added.png');
    await expectNoSecret('credential added');

    const extraRow = page.locator('li.credential', { hasText: 'extra' });
    await extraRow.getByRole('button', { name: 'Remove' }).click();
    await page
      .locator('form.credentials')
      .getByRole('button', { name: /Apply changes/ })
      .click();
    await expect
      .poll(() => page.locator('.credential-name').allTextContents(), { timeout: 300_000, interval: 1000 })
      .toEqual(['github']);
    await shot('07-credential-removed.png');
    await expectNoSecret('credential removed');
  });

  it('follows the logs of a container', async () => {
    await page.getByLabel('Container').selectOption({ label: 'tokenizer (tokenizer)' });
    await page.getByRole('button', { name: 'Follow' }).click();
    await expect.poll(() => page.locator('.log-output').textContent(), { timeout: 60_000 }).not.toBe('');
    await page.getByRole('button', { name: 'Stop following' }).click();
    await shot('08-logs.png');
    await expectNoSecret('logs');
  });

  it('runs verify and shows every check with its evidence', async () => {
    await page.getByRole('button', { name: 'Run verify' }).click();
    const checks = page.locator('table.checks tbody tr');
    await checks.first().waitFor({ timeout: 300_000 });
    expect(await checks.count()).toBeGreaterThan(1);
    const evidence = await page.locator('table.checks .evidence').allTextContents();
    expect(evidence.every((text) => text.length > 0)).toBe(true);
    await shot('09-verify.png');
    await expectNoSecret('verify');
  });

  it('is readable on a narrow window', async () => {
    await page.setViewportSize({ width: 400, height: 800 });
    await page.screenshot({ path: join(artifacts, '10-instances-narrow.png') });
    const instancesOverflow = await page.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth,
    );
    expect(instancesOverflow, 'the instances page scrolls sideways at 400 px').toBeLessThanOrEqual(0);
    await page.goto(`${server.url}/#/deploy`);
    await page.getByRole('heading', { name: 'Target', exact: true }).waitFor({ timeout: 90_000 });
    await shot('11-deploy-narrow.png');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('deletes the instance after a confirmation', async () => {
    await page.goto(`${server.url}/#/instances`);
    const row = page.locator(`tr[data-instance="${name}"]`);
    await row.waitFor({ timeout: 60_000 });
    await row.getByRole('button', { name: `Delete ${name}` }).click();
    await row.getByRole('button', { name: `Yes, delete ${name}` }).click();
    await row.waitFor({ state: 'detached', timeout: 300_000 });
    await shot('12-deleted.png');
    await expectNoSecret('delete');
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
