// The provider's facade: `TargetProviderV1` for one machine. Each operation lives in the
// file named after it; this class only holds the settings and the runtime connection.
import type {
  DeploymentPlanV1,
  DetectionResultV1,
  InstanceDetailV1,
  InstanceSummaryV1,
  LogLineV1,
  LogOptionsV1,
  OperationOptionsV1,
  SidecarRotationRequestV1,
  SidecarRotationStateV1,
  TargetCapabilitiesV1,
  TargetProviderV1,
  VerifyOptionsV1,
  VerifyResultV1,
} from '@keyward/core';
import { applyPlan } from './instance-apply.js';
import { deleteInstance } from './instance-cleanup.js';
import { instanceLogs, startInstance, stopInstance } from './instance-lifecycle.js';
import { getInstance, listInstances } from './instance-state.js';
import { DEFAULT_NETWORK_HELPER_IMAGE, type LocalProviderSettings } from './local-provider-settings.js';
import type { OperationContext } from './operation-context.js';
import { RuntimeConnection } from './runtime-connection.js';
import { rotateSecrets } from './secret-rotation.js';
import { verifyInstance } from './self-test.js';
import { readSidecarState } from './sidecar-state.js';

export const VERSION = '0.1.0';

export class LocalProvider implements TargetProviderV1 {
  readonly specificationVersion = 'v1' as const;
  readonly id: string;
  readonly displayName = 'Local (podman / docker)';
  readonly capabilities: TargetCapabilitiesV1 = {
    networkModes: ['proxy-only', 'open'],
    rotation: true,
    render: false,
    verify: true,
    logsFollow: true,
  };

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

  detect(): Promise<DetectionResultV1> {
    return this.#connection.detect();
  }

  async list(): Promise<InstanceSummaryV1[]> {
    return listInstances(await this.#context());
  }

  async get(name: string): Promise<InstanceDetailV1> {
    return getInstance(await this.#context(), name);
  }

  async apply(plan: DeploymentPlanV1, options: OperationOptionsV1 = {}): Promise<InstanceDetailV1> {
    return applyPlan(await this.#context(), plan, options);
  }

  async start(name: string, options: OperationOptionsV1 = {}): Promise<void> {
    await startInstance(await this.#context(), name, options);
  }

  async stop(name: string, options: OperationOptionsV1 = {}): Promise<void> {
    await stopInstance(await this.#context(), name, options);
  }

  async restart(name: string, options: OperationOptionsV1 = {}): Promise<void> {
    await this.stop(name, options);
    await this.start(name, options);
  }

  async *logs(name: string, options: LogOptionsV1 = {}): AsyncIterable<LogLineV1> {
    yield* instanceLogs(await this.#context(), name, options);
  }

  async delete(name: string, options: OperationOptionsV1 & { removeVolumes?: boolean } = {}): Promise<void> {
    await deleteInstance(await this.#context(), name, options);
  }

  async readSidecarState(name: string, providerId: string): Promise<SidecarRotationStateV1> {
    return readSidecarState(await this.#context(), name, providerId);
  }

  async rotateSecrets(
    name: string,
    request: SidecarRotationRequestV1,
    options: OperationOptionsV1 = {},
  ): Promise<InstanceDetailV1> {
    return rotateSecrets(await this.#context(), name, request, options);
  }

  async verify(name: string, options: VerifyOptionsV1 = {}): Promise<VerifyResultV1> {
    return verifyInstance(await this.#context(), name, options);
  }
}

export function createLocalProvider(settings: LocalProviderSettings = {}): LocalProvider {
  return new LocalProvider(settings);
}
