import { describe, expect, it } from 'vitest';
import { dnsLabelMaxLength, isDnsLabel } from './dns-label.js';

describe('isDnsLabel', () => {
  it('accepts lower-case letters, digits and inner "-"', () => {
    for (const label of ['a', 'my-agent', 'tokenizer', '0x1', 'a'.repeat(dnsLabelMaxLength)]) {
      expect(isDnsLabel(label), label).toBe(true);
    }
  });

  it('refuses upper case, edges with "-", other characters, empty, too long and non-strings', () => {
    for (const label of ['My-agent', '-agent', 'agent-', 'my_agent', 'my.agent', '', 'a'.repeat(64), 42]) {
      expect(isDnsLabel(label), String(label)).toBe(false);
    }
  });

  it('takes a shorter limit for names that get a prefix', () => {
    expect(isDnsLabel('a'.repeat(40), 40)).toBe(true);
    expect(isDnsLabel('a'.repeat(41), 40)).toBe(false);
  });
});
