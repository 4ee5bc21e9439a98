// A wrapper around a real dockerode client that fails one chosen call that changes
// the runtime (create, start, archive upload, exec, rename, remove …), so a test can make
// every step of an apply or rotation fail in turn; or freezes there, the in-process stand-in
// for the process being killed at that call.
import type Docker from 'dockerode';

const dockerMethods = new Set(['createNetwork', 'createVolume', 'createContainer']);
const containerMethods = new Set(['start', 'putArchive', 'exec', 'rename', 'stop', 'remove']);

export interface FaultInjector {
  docker: Docker;
  /** Calls made so far, in order (`createContainer keyward-x-agent`, `start keyward-x-agent` …). */
  calls: string[];
  /** From now on, fail the first call with this description; `undefined` fails nothing. */
  failOn(description: string | undefined): void;
  /**
   * From the first call with this description on, nothing the caller awaits ever settles: the
   * operation stops there like a killed process. `sent`: that call still reaches the runtime
   * (killed right after sending it) or not (killed right before). Resolves once the operation
   * is stopped and the runtime has finished what was sent.
   */
  freezeOn(description: string | RegExp, options: { sent: boolean }): Promise<void>;
}

export function faultInjectingDocker(real: Docker): FaultInjector {
  const calls: string[] = [];
  let pending: string | undefined;
  let freeze:
    | { description: string | RegExp; sent: boolean; frozen: (settled: Promise<unknown>) => void }
    | undefined;
  let frozen = false;
  const never = new Promise<never>(() => undefined);
  /** Undefined: make the call; else what the caller gets instead. */
  const intercept = (description: string, call: () => Promise<unknown>): Promise<unknown> | undefined => {
    if (frozen) return never;
    calls.push(description);
    if (pending !== undefined && description === pending) {
      pending = undefined;
      throw Object.assign(new Error(`injected fault: ${description}`), { statusCode: 500 });
    }
    const freezing =
      freeze &&
      (typeof freeze.description === 'string'
        ? description === freeze.description
        : freeze.description.test(description));
    if (freeze && freezing) {
      frozen = true;
      freeze.frozen(freeze.sent ? call().catch(() => undefined) : Promise.resolve());
      return never;
    }
    return undefined;
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
            const call = () => value.apply(target, args) as Promise<unknown>;
            return intercept(`${property} ${name}${command}`, call) ?? call();
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
          const call = () => value.apply(target, args) as Promise<unknown>;
          return intercept(`${property} ${options?.name ?? options?.Name ?? ''}`, call) ?? call();
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
    freezeOn(description, options) {
      calls.length = 0;
      return new Promise<void>((resolve) => {
        freeze = {
          description,
          sent: options.sent,
          frozen: (settled) => void settled.then(() => resolve()),
        };
      });
    },
  };
}
