// A wrapper around a real dockerode client that fails one chosen call that changes
// the runtime (create, start, archive upload, exec, rename …), so a test can make
// every step of an apply or rotation fail in turn.
import type Docker from 'dockerode';

const dockerMethods = new Set(['createNetwork', 'createVolume', 'createContainer']);
const containerMethods = new Set(['start', 'putArchive', 'exec', 'rename', 'stop']);

export interface FaultInjector {
  docker: Docker;
  /** Calls made so far, in order (`createContainer keyward-x-agent`, `start keyward-x-agent` …). */
  calls: string[];
  /** From now on, fail the first call with this description; `undefined` fails nothing. */
  failOn(description: string | undefined): void;
}

export function faultInjectingDocker(real: Docker): FaultInjector {
  const calls: string[] = [];
  let pending: string | undefined;
  const intercept = (description: string) => {
    calls.push(description);
    if (pending !== undefined && description === pending) {
      pending = undefined;
      throw Object.assign(new Error(`injected fault: ${description}`), { statusCode: 500 });
    }
  };
  const wrapContainer = (container: Docker.Container, name: string) =>
    new Proxy(container, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof property === 'string' && containerMethods.has(property) && typeof value === 'function') {
          return async (...args: unknown[]) => {
            // Execs differ by command (one probe per container), so name them by it.
            const command =
              property === 'exec' ? ` ${((args[0] as { Cmd?: string[] })?.Cmd ?? []).join(' ')}` : '';
            intercept(`${property} ${name}${command}`);
            return value.apply(target, args);
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  const docker = new Proxy(real, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property === 'getContainer') {
        return (name: string) => wrapContainer(target.getContainer(name), name);
      }
      if (typeof property === 'string' && dockerMethods.has(property) && typeof value === 'function') {
        return async (...args: unknown[]) => {
          const options = args[0] as { name?: string; Name?: string } | undefined;
          intercept(`${property} ${options?.name ?? options?.Name ?? ''}`);
          return value.apply(target, args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    docker,
    calls,
    failOn(description) {
      calls.length = 0;
      pending = description;
    },
  };
}
