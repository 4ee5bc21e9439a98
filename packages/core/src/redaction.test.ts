import { describe, expect, it } from 'vitest';
import { KeywardError } from './errors/keyward-error.js';
import { REDACTED, redact, registerRedactionPattern, SecretRedactor } from './redaction.js';

const secret = 'sk-live-4f9a1c2e7b';

function redactor(): SecretRedactor {
  const instance = new SecretRedactor();
  instance.register(secret);
  return instance;
}

describe('redact', () => {
  it('removes a registered value from a log line, and its encoded forms too', () => {
    const lines = [
      `calling api with ${secret}`,
      `url=https://x/?key=${encodeURIComponent(secret)}`,
      `header=${Buffer.from(secret).toString('base64')}`,
      JSON.stringify({ nested: `Bearer ${secret}` }),
    ];
    for (const line of lines) {
      const output = redact(line, redactor());
      expect(output).not.toContain(secret);
      expect(output).toContain(REDACTED);
    }
  });

  it('removes it from nested API response objects without touching the input', () => {
    const response = { instance: { env: { NOTE: `token ${secret}` }, list: [secret, 'keep-me'] } };
    const output = redact(response, redactor());
    expect(JSON.stringify(output)).not.toContain(secret);
    expect(output.instance.list[1]).toBe('keep-me');
    expect(response.instance.list[0]).toBe(secret);
  });

  it('removes it from errors, including a KeywardError turned into a response body', () => {
    const error = new KeywardError({ code: 'RUNTIME_ERROR', message: `podman said: bad token ${secret}` });
    expect(JSON.stringify(redact(error, redactor()))).not.toContain(secret);
    expect(JSON.stringify(redact(error.toJSON(), redactor()))).not.toContain(secret);
    expect(redact(new Error(`x ${secret}`), redactor())).toEqual({ name: 'Error', message: `x ${REDACTED}` });
  });

  it('redacts by key even for values it has never seen, with the patterns providers registered', () => {
    const before = redact({ ACME_CRED_GITHUB: 'sealed-value' }, new SecretRedactor());
    expect(before).toEqual({ ACME_CRED_GITHUB: 'sealed-value' });
    registerRedactionPattern(/^ACME_(CRED|AUTH)_/i);
    const output = redact(
      {
        password: 'never-registered',
        ACME_AUTH_GITHUB: 'abc123abc123',
        ACME_CRED_GITHUB: 'sealed',
        ACME_SEAL_KEY: 'public-key-stays',
        OPENAI_API_KEY: 'sk-123456',
        secrets: [
          {
            name: 'open-key',
            value: 'deadbeefdeadbeef',
            visibleTo: ['proxy'],
            delivery: { type: 'file' },
          },
        ],
      },
      new SecretRedactor(),
    );
    expect(output).toEqual({
      password: REDACTED,
      ACME_AUTH_GITHUB: REDACTED,
      ACME_CRED_GITHUB: REDACTED,
      ACME_SEAL_KEY: 'public-key-stays',
      OPENAI_API_KEY: REDACTED,
      secrets: [{ name: 'open-key', value: REDACTED, visibleTo: ['proxy'], delivery: { type: 'file' } }],
    });
  });

  it('handles cycles and binary data', () => {
    const cyclic: Record<string, unknown> = { note: secret };
    cyclic['self'] = cyclic;
    const output = redact(cyclic, redactor()) as Record<string, unknown>;
    expect(output['note']).toBe(REDACTED);
    expect(output['self']).toBe(output);
    expect(redact({ data: new Uint8Array([1, 2]) }, redactor())).toEqual({ data: REDACTED });
  });

  it('ignores values too short to redact safely, and replaces longer overlapping values first', () => {
    const instance = new SecretRedactor();
    instance.register('abc');
    instance.register('sk-live');
    instance.register(secret);
    expect(instance.redactString(`abc ${secret} sk-live`)).toBe(`abc ${REDACTED} ${REDACTED}`);
  });
});
