import { describe, expect, it } from 'vitest';
import { isReservedDestinationHeader, selectDst } from '../src/header-rules.js';
import { isReservedDestinationHeader as exported } from '../src/index.js';

// isReservedDestinationHeader is what configuration (provider-tokenizer) validates with; it
// must be the rule the proxy applies to a processor's dst at request time.
describe('reserved destination headers', () => {
  const reserved = [
    'Host',
    'Connection',
    'Keep-Alive',
    'Proxy-Connection',
    'Proxy-Authorization',
    'Proxy-Authenticate',
    'Proxy-Tokenizer',
    'TE',
    'Trailer',
    'Transfer-Encoding',
    'Upgrade',
    'Expect',
    'Content-Length',
  ];
  const allowed = [
    'Authorization',
    'X-Api-Key',
    'Cookie',
    'X-Goog-Api-Key',
    'Tes',
    'Upgrade-Insecure-Requests',
  ];

  it.each(reserved)('%s is reserved in any case, and the proxy refuses it as dst', (name) => {
    for (const spelling of [name, name.toLowerCase(), name.toUpperCase()]) {
      expect(isReservedDestinationHeader(spelling), spelling).toBe(true);
      expect(() => selectDst({}, { dst: spelling }), spelling).toThrow('bad request');
    }
  });

  it.each(allowed)('%s is not reserved, and the proxy accepts it as dst', (name) => {
    expect(isReservedDestinationHeader(name)).toBe(false);
    expect(selectDst({}, { dst: name.toLowerCase() })).toBe(
      name.replace(/(^|-)(\w)/g, (match) => match.toUpperCase()),
    );
  });

  it('is the function the package exports', () => {
    expect(exported).toBe(isReservedDestinationHeader);
  });
});
