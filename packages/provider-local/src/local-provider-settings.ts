import type Docker from 'dockerode';
import type { DetectionContext, RuntimeDetectionStrategy } from './runtime-detection.js';
import type { RuntimeKind } from './runtime-differences.js';

/** Built by `keyward images build` (`@keyward/images`); configurable for registries. */
export const DEFAULT_NETWORK_HELPER_IMAGE = 'localhost/keyward-network-helper:0.2.0';

export interface LocalProviderSettings {
  /** A dockerode client to use instead of detecting a runtime (tests, custom endpoints). */
  docker?: Docker;
  /** `podman` or `docker`; asked from the runtime's `version` when not given. */
  runtimeKind?: RuntimeKind;
  /** Runtime detection strategies, in order; defaults to env, rootless podman, rootful podman, docker. */
  detectionStrategies?: readonly RuntimeDetectionStrategy[];
  /** Environment, uid and file checks for detection; defaults to this process's. */
  detectionContext?: Partial<DetectionContext>;
  /** Directory for cross-process instance locks. Default: `$TMPDIR/keyward-locks`. */
  lockDirectory?: string;
  /** How long a rotation waits for another one on the same instance. Default 60 s. */
  lockWaitMs?: number;
  /** Image of the port-forwarding / namespace-holding helper container. */
  networkHelperImage?: string;
  /** Target id; instances carry it in their `keyward.dev/target` label. Default `local`. */
  id?: string;
  clock?: () => Date;
  /** Generation ids for volume names; injectable for deterministic tests. */
  generation?: () => string;
  /** Pause between readiness probes. Default 250 ms. */
  readinessIntervalMs?: number;
  /** How files reach read-only volumes; defaults to what the runtime supports (see runtime-differences). */
  volumeWriteStrategy?: 'archive-into-consumer' | 'writer-container';
  /** Who makes new volumes writable for their non-root user; defaults to what the runtime does (see runtime-differences). */
  volumeOwnershipStrategy?: 'runtime' | 'owner-container';
  /** How containers join several networks; defaults to what the runtime supports (see runtime-differences). */
  networkAttachStrategy?: 'at-create' | 'connect-after-create';
  /** Seconds a container gets to stop before it is killed. Default 5. */
  stopTimeoutSeconds?: number;
  /**
   * Host ports the network checks try on the host's addresses, gateway, host.containers.internal
   * and IPv6 link-local (tests pass the port of a listener they started on 0.0.0.0). Default 22, 80, 443.
   */
  verificationHostPorts?: readonly number[];
}
