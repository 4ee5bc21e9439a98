import { describe, expect, it } from 'vitest';
import { isKeywardError } from './errors/keyward-error.js';
import { parseInstanceSpec } from './instance-spec.js';

const valid = { name: 'my-agent', agent: { image: 'localhost/agent:1', port: 18789 } };

function problemsOf(input: unknown): string[] {
  try {
    parseInstanceSpec(input);
  } catch (error) {
    if (isKeywardError(error, 'INVALID_INSTANCE_SPEC'))
      return (error.details?.['problems'] as string[]) ?? [];
    throw error;
  }
  throw new Error('expected the spec to be rejected');
}

describe('instance spec', () => {
  it('fills defaults: target local, proxy-only egress, no state directories, a read-only agent root, no target options', () => {
    const spec = parseInstanceSpec(valid);
    expect(spec).toEqual({
      apiVersion: 'keyward.dev/v1',
      name: 'my-agent',
      target: 'local',
      agent: {
        image: 'localhost/agent:1',
        port: 18789,
        env: {},
        stateDirectories: [],
        readOnlyRootFilesystem: true,
      },
      targetOptions: {},
      network: { egress: 'proxy-only' },
      sidecars: {},
    });
  });

  it('has no agent-specific defaults: the port is required', () => {
    expect(problemsOf({ name: 'a', agent: { image: 'x' } })).toEqual([
      expect.stringMatching(/^agent\.port: /),
    ]);
  });

  it('moves the v1 host port and address into the target options, without overriding given ones', () => {
    expect(
      parseInstanceSpec({ ...valid, network: { egress: 'open', hostPort: 8080, hostAddress: '0.0.0.0' } }),
    ).toMatchObject({
      network: { egress: 'open' },
      targetOptions: { hostPort: 8080, hostAddress: '0.0.0.0' },
    });
    expect(
      parseInstanceSpec({ ...valid, targetOptions: { hostPort: 9090 }, network: { hostPort: 8080 } })
        .targetOptions,
    ).toEqual({ hostPort: 9090 });
  });

  it('accepts a 63-character name and rejects a 64-character one', () => {
    expect(parseInstanceSpec({ ...valid, name: 'a'.repeat(63) }).name).toHaveLength(63);
    expect(problemsOf({ ...valid, name: 'a'.repeat(64) })).toEqual([
      'name: must be at most 63 characters (a DNS-1123 label)',
    ]);
  });

  it.each([
    ['upper case', 'MyAgent'],
    ['underscore', 'my_agent'],
    ['leading dash', '-agent'],
    ['trailing dash', 'agent-'],
    ['dot', 'my.agent'],
  ])('rejects a name with %s and says what a DNS-1123 label is', (_label, name) => {
    const [problem] = problemsOf({ ...valid, name });
    expect(problem).toMatch(/^name: must be a DNS-1123 label: lower-case letters, digits and "-"/);
  });

  it.each([
    [{ ...valid, name: '' }, 'name: must not be empty'],
    [{ name: 'a' }, 'agent: '],
    [{ ...valid, agent: { image: '' } }, 'agent.image: must not be empty'],
    [{ ...valid, agent: { image: 'x', port: 0 } }, 'agent.port: must be between 1 and 65535'],
    [{ ...valid, agent: { image: 'x', port: 65536 } }, 'agent.port: must be between 1 and 65535'],
    [{ ...valid, agent: { image: 'x', port: 80.5 } }, 'agent.port: must be a whole number'],
    [
      { ...valid, agent: { image: 'x', env: { 'BAD-NAME': 'v' } } },
      'agent.env.BAD-NAME: environment variable names must match',
    ],
    [
      { ...valid, agent: { image: 'x', env: { GOOD: 1 } } },
      'agent.env.GOOD: environment values must be strings',
    ],
    [
      { ...valid, agent: { image: 'x', skillsDirectory: 'skills' } },
      'agent.skillsDirectory: must be an absolute path',
    ],
    [{ ...valid, network: { egress: 'none' } }, 'network.egress: must be "proxy-only" (default) or "open"'],
    [{ ...valid, network: { hostPort: 70000 } }, 'network.hostPort: must be between 1 and 65535'],
    [{ ...valid, target: 'Local' }, 'target: must be a DNS-1123 label'],
    [{ ...valid, sidecars: { Tokenizer: {} } }, 'sidecars.Tokenizer: must be a DNS-1123 label'],
    [{ ...valid, apiVersion: 'v2' }, 'apiVersion: must be "keyward.dev/v1"'],
    [{ ...valid, agnet: {} }, '(root): unknown field(s) "agnet"; remove them or check the spelling'],
    [{ ...valid, agent: { image: 'x', imgae: 'y' } }, 'agent: unknown field(s) "imgae"'],
  ])('rejects %j with a message naming the field and the rule', (input, expected) => {
    const problems = problemsOf(input);
    expect(problems.some((problem) => problem.startsWith(expected))).toBe(true);
  });

  it('puts every problem in the error message', () => {
    expect(() => parseInstanceSpec({ name: 'BAD', agent: { image: '', port: -1 } })).toThrow(
      /name: must be a DNS-1123 label.*agent\.image: must not be empty.*agent\.port: must be between 1 and 65535/,
    );
  });
});
