// @vitest-environment happy-dom
import { KeywardApiError } from '@keyward/api/client';
import { describe, expect, it } from 'vitest';
import { conflictMessage } from '../src/credentials-panel.js';
import { openModeSentence } from '../src/deploy-page.js';
import { verifyReport } from '../src/instances-page.js';
import {
  buildConfigForm,
  isSecretField,
  type JsonSchema,
  parseKeyValueLines,
  showProblems,
} from '../src/schema-form.js';

// The tokenizer's config schema as GET /api/providers serves it (trimmed to what the form covers).
const credentialProxySchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    credentials: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'allowedHosts'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1 },
          secret: { type: 'string' },
          allowedHosts: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
          headerDst: { type: 'string', description: 'The header the proxy writes the credential into' },
          headerFmt: { type: 'string' },
          processor: {
            oneOf: [
              {
                type: 'object',
                required: ['type'],
                properties: {
                  type: { type: 'string', const: 'inject_hmac' },
                  hash: { type: 'string', const: 'sha256' },
                  dst: { type: 'string' },
                },
              },
              {
                type: 'object',
                required: ['type', 'accessKeyId'],
                properties: {
                  type: { type: 'string', const: 'sigv4' },
                  accessKeyId: { type: 'string' },
                  noSwap: { type: 'boolean' },
                },
              },
            ],
          },
        },
      },
    },
    port: { type: 'integer', default: 4001 },
    allowPrivateUpstreams: { type: 'boolean', default: false },
  },
};

function mount(schema: JsonSchema, name = 'tokenizer') {
  const form = buildConfigForm(schema, name, 'Credential Proxy');
  document.body.replaceChildren(form.element);
  return form;
}

function input(label: string, within: ParentNode = document): HTMLInputElement | HTMLSelectElement {
  const labelElement = [...within.querySelectorAll('label')].find(
    (element) => element.textContent?.replace(' *', '') === label,
  );
  if (!labelElement) throw new Error(`no label "${label}"`);
  return document.getElementById(labelElement.htmlFor) as HTMLInputElement;
}

function type(element: HTMLInputElement | HTMLSelectElement, value: string) {
  element.value = value;
  element.dispatchEvent(new Event('change'));
}

function clickButton(text: string) {
  const button = [...document.querySelectorAll('button')].find((element) => element.textContent === text);
  if (!button) throw new Error(`no button "${text}"`);
  button.click();
}

describe('forms built from a provider config schema', () => {
  it('renders the Credential Proxy rows: name, secret as a password field, hosts, header, processor', () => {
    const form = mount(credentialProxySchema);
    expect(form.read('sidecars.tokenizer')).toBeUndefined();
    clickButton('+ Add credential');
    const secret = input('Secret') as HTMLInputElement;
    expect(secret.type).toBe('password');
    expect(secret.getAttribute('autocomplete')).toBe('off');
    expect(secret.getAttribute('spellcheck')).toBe('false');
    expect((input('Name') as HTMLInputElement).type).toBe('text');
    type(input('Name'), 'github');
    type(secret, 'ghp_value');
    type(input('Allowed hosts'), 'api.github.com, uploads.github.com');
    type(input('Header dst'), 'X-Api-Key');
    type(input('Processor: type'), '1');
    type(input('Access key id'), 'AKIA123');
    expect(form.read('sidecars.tokenizer')).toEqual({
      credentials: [
        {
          name: 'github',
          secret: 'ghp_value',
          allowedHosts: ['api.github.com', 'uploads.github.com'],
          headerDst: 'X-Api-Key',
          processor: { type: 'sigv4', accessKeyId: 'AKIA123' },
        },
      ],
    });
  });

  it('leaves defaults out, reads numbers as numbers and removes rows', () => {
    const form = mount(credentialProxySchema);
    clickButton('+ Add credential');
    clickButton('+ Add credential');
    expect(document.querySelectorAll('fieldset.row')).toHaveLength(2);
    clickButton('Remove credential');
    expect(document.querySelectorAll('fieldset.row legend')[0]?.textContent).toBe('Credential 1');
    type(input('Port'), '4100');
    expect(form.read('')).toEqual({ credentials: [{}], port: 4100 });
  });

  it('empties secret inputs after submit (nothing secret stays in the page)', () => {
    const form = mount(credentialProxySchema);
    clickButton('+ Add credential');
    type(input('Secret'), 'ghp_value');
    form.clearSecrets();
    expect((input('Secret') as HTMLInputElement).value).toBe('');
    expect(document.body.innerHTML).not.toContain('ghp_value');
  });

  it("puts the API's problems next to the field they name, and returns the rest", () => {
    const form = mount(credentialProxySchema);
    clickButton('+ Add credential');
    clickButton('+ Add credential');
    form.read('sidecars.tokenizer');
    const rest = showProblems(document, [
      'sidecars.tokenizer.credentials.1.allowedHosts: must be a list of hostnames, for example ["api.github.com"]',
      'sidecars.tokenizer.credentials.0.name: must not be empty; write a name such as "github"',
      'sidecars.tokenizer.credentials.0.processor.type: must be one of the processors',
      'name: must be a DNS-1123 label',
    ]);
    expect(rest).toEqual(['name: must be a DNS-1123 label']);
    const rows = document.querySelectorAll('fieldset.row');
    const errorOf = (row: Element, label: string) =>
      input(label, row).closest('.field')?.querySelector('.field-error')?.textContent;
    expect(errorOf(rows[0]!, 'Name')).toBe('must not be empty; write a name such as "github"');
    expect(errorOf(rows[1]!, 'Allowed hosts')).toContain('must be a list of hostnames');
    expect(input('Name', rows[0]!).getAttribute('aria-invalid')).toBe('true');
    expect(rows[0]!.querySelector('fieldset.union .field-error')?.textContent).toBe(
      'type: must be one of the processors',
    );
    // A new submit clears the old messages.
    showProblems(document, []);
    expect(document.querySelector('[aria-invalid]')).toBeNull();
  });

  it('gives a third-party sidecar a form from its schema alone', () => {
    const form = mount(
      {
        type: 'object',
        required: ['greeting'],
        properties: {
          greeting: { type: 'string', description: 'What the greeter says' },
          language: { type: 'string', enum: ['en', 'fr'] },
          apiKey: { type: 'string' },
          loud: { type: 'boolean' },
          extra: { type: 'object' },
        },
      },
      'greeter',
    );
    expect(input('Greeting').getAttribute('aria-required')).toBe('true');
    expect(document.getElementById(`${input('Greeting').id}-hint`)?.textContent).toBe(
      'What the greeter says',
    );
    expect((input('Api key') as HTMLInputElement).type).toBe('password');
    type(input('Greeting'), 'hello');
    type(input('Language'), 'fr');
    (input('Loud') as HTMLInputElement).checked = true;
    (input('Extra') as unknown as HTMLTextAreaElement).value = '{"a":1}';
    expect(form.read('sidecars.greeter')).toEqual({
      greeting: 'hello',
      language: 'fr',
      loud: true,
      extra: { a: 1 },
    });
    for (const label of document.querySelectorAll('label')) {
      expect(document.getElementById(label.htmlFor), label.textContent ?? '').not.toBeNull();
    }
  });

  it('tells secret fields by name or schema', () => {
    expect(isSecretField('secret', {})).toBe(true);
    expect(isSecretField('api_key', {})).toBe(true);
    expect(isSecretField('clientSecret', {})).toBe(false);
    expect(isSecretField('value', { writeOnly: true })).toBe(true);
    expect(isSecretField('name', {})).toBe(false);
  });

  it('reads NAME=value lines', () => {
    expect(parseKeyValueLines('A=1\n\n B = two=2 \n')).toEqual({ A: '1', B: ' two=2' });
    expect(parseKeyValueLines('  ')).toBeUndefined();
  });
});

describe('messages', () => {
  it('says what open gives up', () => {
    expect(openModeSentence).toMatch(/any host directly/);
  });

  it('explains a 409 with the running job', () => {
    const error = new KeywardApiError(409, 'ROTATION_IN_PROGRESS', 'busy', { jobId: 'job-7' });
    expect(conflictMessage(error)).toContain('already running on this instance (job job-7)');
    expect(conflictMessage(error)).toContain('old credentials working');
  });

  it('shows every verify check with its owner and evidence', () => {
    document.body.replaceChildren(
      ...verifyReport({
        passed: false,
        checks: [
          {
            name: 'direct-egress-blocked',
            providerId: 'local',
            description: 'No route out',
            passed: true,
            evidence: 'connect ENETUNREACH',
          },
          {
            name: 'proxied-request-injected',
            providerId: 'tokenizer',
            description: 'Injects',
            passed: false,
            evidence: 'got 401',
          },
        ],
      }),
    );
    const rows = [...document.querySelectorAll('table.checks tbody tr')].map((row) => row.textContent);
    expect(rows[0]).toContain('direct-egress-blocked');
    expect(rows[0]).toContain('connect ENETUNREACH');
    expect(rows[1]).toContain('failed');
    expect(document.body.textContent).toContain('Some checks failed.');
  });
});
