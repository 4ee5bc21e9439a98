// The provider's facade: `TargetProviderV2` for one machine. Each operation lives in the
// file named after it; this class only holds the settings and the runtime connection.
import type {
  AddressRequestV2,
  DeploymentPlanV2,
  DetectionResultV2,
  ExecRequestV2,
  ExecResultV2,
  InstanceDetailV2,
  InstanceSummaryV2,
  InterruptedOperationRecoveryV2,
  LogLineV2,
  LogOptionsV2,
  OperationOptionsV2,
  SidecarRotationRequestV2,
  SidecarStateV2,
  TargetCapabilitiesV2,
  TargetProviderV2,
  VerifyCheckV2,
} from '@keyward/core';
import { applyPlan } from './instance-apply.js';
import { deleteInstance } from './instance-cleanup.js';
import { execInInstance } from './instance-exec.js';
import { instanceLogs, startInstance, stopInstance } from './instance-lifecycle.js';
import { getInstance, listInstances } from './instance-state.js';
import { recoverInterruptedRotation } from './interrupted-rotation-recovery.js';
import { DEFAULT_NETWORK_HELPER_IMAGE, type LocalProviderSettings } from './local-provider-settings.js';
import { networkChecks } from './network-checks.js';
import type { OperationContext } from './operation-context.js';
import { RuntimeConnection } from './runtime-connection.js';
import { asRuntimeUnavailable } from './runtime-loss.js';
import { rotateSecrets } from './secret-rotation.js';
import { readSidecarState } from './sidecar-state.js';
import { type LocalTargetOptions, localAddressOf, localTargetOptionsSchema } from './target-options.js';

export const VERSION = '0.1.0';

export class LocalProvider implements TargetProviderV2<LocalTargetOptions> {
  readonly specificationVersion = 'v2' as const;
  readonly id: string;
  readonly displayName = 'Local (podman / docker)';
  /**
   * Egress it enforces: `none` (the internal network, no route out) and `internet`. Not
   * `destinations`: a list of hosts would need a filtering proxy or firewall rules this target
   * does not have, and the composer refuses such plans rather than widen them.
   */
  readonly capabilities: TargetCapabilitiesV2 = {
    networkModes: ['proxy-only', 'open'],
    egress: ['none', 'internet'],
    rotation: true,
    render: false,
    exec: true,
    logsFollow: true,
  };
  readonly configSchema = localTargetOptionsSchema;

  readonly #settings: LocalProviderSettings;
  readonly #helperImage: string;
  readonly #connection: RuntimeConnection;

  constructor(settings: LocalProviderSettings = {}) {
    this.#settings = settings;
    this.id = settings.id ?? 'local';
    this.#helperImage = settings.networkHelperImage ?? DEFAULT_NETWORK_HELPER_IMAGE;
    this.#connection = new RuntimeConnection(settings, this.id);
  }

  /** Connects on first use; every operation gets the same runtime. */
  async #context(): Promise<OperationContext> {
    return {
      providerId: this.id,
      settings: this.#settings,
      helperImage: this.#helperImage,
      runtime: await this.#connection.runtime(),
    };
  }

  /** Runs an operation; a runtime that does not answer at all becomes `RUNTIME_UNAVAILABLE`. */
  async #run<T>(operation: (context: OperationContext) => Promise<T>): Promise<T> {
    let context: OperationContext | undefined;
    try {
      context = await this.#context();
      return await operation(context);
    } catch (error) {
      throw asRuntimeUnavailable(error, this.id, context?.runtime.docker ?? this.#settings.docker);
    }
  }

  addressOf(request: AddressRequestV2): string {
    return localAddressOf(request);
  }

  detect(): Promise<DetectionResultV2> {
    return this.#connection.detect();
  }

  async list(): Promise<InstanceSummaryV2[]> {
    return this.#run((context) => listInstances(context));
  }

  async get(name: string): Promise<InstanceDetailV2> {
    return this.#run((context) => getInstance(context, name));
  }

  async apply(plan: DeploymentPlanV2, options: OperationOptionsV2 = {}): Promise<InstanceDetailV2> {
    return this.#run((context) => applyPlan(context, plan, options));
  }

  async start(name: string, options: OperationOptionsV2 = {}): Promise<void> {
    await this.#run((context) => startInstance(context, name, options));
  }

  async stop(name: string, options: OperationOptionsV2 = {}): Promise<void> {
    await this.#run((context) => stopInstance(context, name, options));
  }

  async restart(name: string, options: OperationOptionsV2 = {}): Promise<void> {
    await this.stop(name, options);
    await this.start(name, options);
  }

  async *logs(name: string, options: LogOptionsV2 = {}): AsyncIterable<LogLineV2> {
    yield* instanceLogs(await this.#context(), name, options);
  }

  async delete(name: string, options: OperationOptionsV2 & { removeVolumes?: boolean } = {}): Promise<void> {
    await this.#run((context) => deleteInstance(context, name, options));
  }

  async readSidecarState(name: string, providerId: string): Promise<SidecarStateV2> {
    return this.#run((context) => readSidecarState(context, name, providerId));
  }

  async rotateSecrets(
    name: string,
    request: SidecarRotationRequestV2,
    options: OperationOptionsV2 = {},
  ): Promise<InstanceDetailV2> {
    return this.#run((context) => rotateSecrets(context, name, request, options));
  }

  /**
   * An instance a rotation left half-done (the process running it was killed, or the runtime
   * stopped answering): the previous containers come back (`restored`), or, when the new agent
   * was already made, the new ones are kept and started (`completed`). Leftover file volumes go.
   */
  async recoverInterrupted(
    name: string,
    options: OperationOptionsV2 = {},
  ): Promise<InterruptedOperationRecoveryV2> {
    return this.#run((context) => recoverInterruptedRotation(context, name, options));
  }

  async exec(
    name: string,
    request: ExecRequestV2,
    options: { signal?: AbortSignal } = {},
  ): Promise<ExecResultV2> {
    return this.#run((context) => execInInstance(context, name, request, options));
  }

  async verificationChecks(instance: InstanceDetailV2): Promise<VerifyCheckV2[]> {
    return this.#run((context) => networkChecks(context, instance));
  }
}

export function createLocalProvider(settings: LocalProviderSettings = {}): LocalProvider {
  return new LocalProvider(settings);
}
