import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { generateTokenizerSkill } from '../src/index.js';
import { extractCodeBlocks } from './skill-examples.js';

const credentials = [
  { name: 'github', allowedHosts: ['api.github.com', 'uploads.github.com'] },
  { name: 'stripe', allowedHosts: ['api.stripe.com:8443'], headerDst: 'X-Api-Key', headerFmt: 'key=%s' },
  {
    name: 'signer',
    allowedHosts: ['hooks.example.com'],
    processor: { type: 'inject_hmac' as const, fmt: 'sha256=%x' },
  },
  {
    name: 'aws s3',
    allowedHosts: ['s3.amazonaws.com'],
    processor: { type: 'sigv4' as const, accessKeyId: 'AKIAEXAMPLE' },
  },
  {
    name: 'google',
    allowedHosts: ['oauth2.googleapis.com', 'www.googleapis.com'],
    processor: {
      type: 'jwt' as const,
      email: 'robot@x.iam.gserviceaccount.com',
      tokenUrl: 'https://oauth2.googleapis.com/token',
    },
  },
];

const workDirectory = mkdtempSync(join(tmpdir(), 'keyward-skill-'));
afterAll(() => rmSync(workDirectory, { recursive: true, force: true }));

describe('generated SKILL.md', () => {
  const skill = generateTokenizerSkill({ proxyUrl: 'http://tokenizer:4001', credentials });

  it('matches the snapshot', async () => {
    await expect(skill).toMatchFileSnapshot('./__snapshots__/SKILL.md.snap');
  });

  it('has YAML frontmatter with name and description', () => {
    const match = /^---\n([\s\S]*?)\n---\n/.exec(skill);
    expect(match).not.toBeNull();
    const frontmatter = parseYaml(match?.[1] ?? '') as Record<string, unknown>;
    expect(frontmatter['name']).toBe('tokenizer');
    expect(frontmatter['description']).toContain('http://tokenizer:4001');
    expect(frontmatter['description']).toContain('github (api.github.com, uploads.github.com)');
  });

  it('lists every credential with its hosts and env var names', () => {
    for (const [heading, key] of [
      ['github', 'GITHUB'],
      ['stripe', 'STRIPE'],
      ['signer', 'SIGNER'],
      ['aws s3', 'AWS_S3'],
      ['google', 'GOOGLE'],
    ] as const) {
      expect(skill).toContain(`### ${heading}`);
      for (const prefix of ['TOKENIZER_CRED_', 'TOKENIZER_AUTH_', 'TOKENIZER_HOSTS_']) {
        expect(skill).toContain(`$${prefix}${key}`);
      }
    }
    expect(skill).toContain('`api.stripe.com:8443`');
    expect(skill).toContain('`X-Api-Key: key=<credential>`');
    expect(skill).toContain('`Authorization: sha256=<hex signature>`');
    expect(skill).toContain('access key id `AKIAEXAMPLE`');
    expect(skill).toContain('`http://oauth2.googleapis.com/token`');
  });

  it('states the rules: http:// URLs, the two headers, only bound hosts', () => {
    expect(skill).toContain('Write `http://` URLs');
    expect(skill).toContain(
      '`Proxy-Tokenizer: <sealed token>` and `Proxy-Authorization: Bearer <proxy password>`',
    );
    expect(skill).toContain('A credential works only for its hosts');
    // The header is fixed at seal time (issue 11): the skill says so, and what the refusal looks like.
    expect(skill).toContain('The header and its format are sealed into the');
    expect(skill).toContain('cannot change them and are refused');
  });

  it('has curl, Node (http and undici) and Python examples using the first inject credential', () => {
    const blocks = extractCodeBlocks(skill);
    expect(blocks.map((block) => block.language)).toEqual(['bash', 'bash', 'js', 'js', 'python']);
    for (const block of blocks) {
      expect(block.code).toContain('TOKENIZER_CRED_GITHUB');
      expect(block.code).toContain('http://api.github.com/');
    }
  });

  it.each(extractCodeBlocks(generateTokenizerSkill({ proxyUrl: 'http://localhost:4001', credentials })))(
    'example %# ($language) is syntactically valid',
    ({ language, code }) => {
      const file = join(workDirectory, `example-${Math.random().toString(36).slice(2)}`);
      if (language === 'bash') {
        writeFileSync(`${file}.sh`, code);
        execFileSync('bash', ['-n', `${file}.sh`]);
      } else if (language === 'js') {
        writeFileSync(`${file}.mjs`, code);
        execFileSync(process.execPath, ['--check', `${file}.mjs`]);
      } else if (language === 'python') {
        writeFileSync(`${file}.py`, code);
        execFileSync('python3', ['-m', 'py_compile', `${file}.py`]);
      } else {
        throw new Error(`unexpected example language ${language}`);
      }
    },
  );

  it('catches a broken example (the syntax checks can fail)', () => {
    const file = join(workDirectory, 'broken');
    writeFileSync(`${file}.mjs`, "const x = ('unclosed;\n");
    expect(() => execFileSync(process.execPath, ['--check', `${file}.mjs`], { stdio: 'pipe' })).toThrow();
    writeFileSync(`${file}.py`, 'print("unclosed\n');
    expect(() => execFileSync('python3', ['-m', 'py_compile', `${file}.py`], { stdio: 'pipe' })).toThrow();
    writeFileSync(`${file}.sh`, 'curl "unclosed\n');
    expect(() => execFileSync('bash', ['-n', `${file}.sh`], { stdio: 'pipe' })).toThrow();
  });

  it('uses the address of the network mode it is given', () => {
    const open = generateTokenizerSkill({ proxyUrl: 'http://localhost:4001', credentials });
    expect(open).toContain('`http://localhost:4001`, also in the environment variable `TOKENIZER_PROXY_URL`');
    expect(open).not.toContain('tokenizer:4001');
  });

  it('says so when there are no credentials and has no examples', () => {
    const empty = generateTokenizerSkill({ proxyUrl: 'http://tokenizer:4001', credentials: [] });
    expect(empty).toContain('No credentials are configured yet.');
    expect(extractCodeBlocks(empty)).toEqual([]);
    expect(parseYaml(/^---\n([\s\S]*?)\n---\n/.exec(empty)?.[1] ?? '')).toMatchObject({ name: 'tokenizer' });
  });

  it('keeps names with Markdown or YAML characters from breaking the document', () => {
    const tricky = generateTokenizerSkill({
      proxyUrl: 'http://tokenizer:4001',
      credentials: [{ name: 'a: "b" `c` #d', allowedHosts: ['api.example.com'] }],
    });
    const frontmatter = parseYaml(/^---\n([\s\S]*?)\n---\n/.exec(tricky)?.[1] ?? '') as Record<
      string,
      string
    >;
    expect(frontmatter['description']).toContain('a: "b" `c` #d (api.example.com)');
    expect(tricky).toContain('### a: "b" \\`c\\` \\#d');
    expect(tricky).toContain('$TOKENIZER_CRED_A___B___C___D');
  });
});
