import { describe, expect, it } from 'vitest';
import { credentialNeedles, NeedleScanner } from './credential-exposure.js';

const credential = 'kwdemo_Zm9vYmFyYmF6cXV4';

function scan(chunks: string[]): string[] {
  const scanner = new NeedleScanner(credentialNeedles(credential));
  for (const chunk of chunks) scanner.push(Buffer.from(chunk, 'utf8'));
  return [...scanner.found].sort();
}

describe('NeedleScanner', () => {
  it('finds the credential split across chunks at every possible point', () => {
    const text = `prefix ${credential} suffix`;
    for (let cut = 1; cut < text.length; cut += 1) {
      expect(scan([text.slice(0, cut), text.slice(cut)]), `cut at ${cut}`).toEqual(['raw']);
    }
    expect(scan([...text])).toEqual(['raw']);
  });

  it('finds the usual encodings and nothing in text without them', () => {
    // Unpadded base64url is a prefix of padded base64: both match.
    expect(scan([Buffer.from(credential).toString('base64')])).toContain('base64');
    expect(scan([Buffer.from(credential).toString('base64url')])).toEqual(['base64url']);
    expect(scan([Buffer.from(credential).toString('hex')])).toEqual(['hex']);
    expect(scan(['kwdemo_Zm9vYmFyYmF6cXV', 'sealed token: abc'])).toEqual([]);
  });

  it('does not repeat an encoding that equals another', () => {
    const forms = credentialNeedles('abcdef').map((needle) => needle.form);
    expect(new Set(forms).size).toBe(forms.length);
  });
});
