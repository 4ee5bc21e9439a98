// core's target conformance suite against a real kube-apiserver, etcd and controller manager
// (scripts/k8s), with the real tokenizer provider's plan. No kubelet: the pod status writer
// (a kubelet stand-in) marks pods running, so the instance reaches `running`; logs are empty.
import { testTargetProvider } from '@keyward/core/testing';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe } from 'vitest';
import { createKubernetesProvider } from '../src/index.js';
import { podStatusWriter } from '../src/testing/index.js';
import { type ControlPlane, kubeConfigOf, startControlPlane } from './support/control-plane.js';
import { tokenizerPlan } from './support/plan-fixtures.js';

let controlPlane: ControlPlane;
let kubeConfig: KubeConfig;
let kubelet: ReturnType<typeof podStatusWriter>;

beforeAll(async () => {
  controlPlane = await startControlPlane();
  kubeConfig = kubeConfigOf(controlPlane);
  kubelet = podStatusWriter({ kubeConfig }).start();
});

afterAll(async () => {
  await kubelet?.stop();
  await controlPlane?.stop();
});

describe.each(['proxy-only', 'open'] as const)(
  '%s, tokenizer plan (pod status written by the test: no kubelet)',
  (mode) => {
    testTargetProvider({
      createProvider: () =>
        createKubernetesProvider({ kubeConfig, pollIntervalMs: 200, rolloutTimeoutMs: 60_000 }),
      createPlan: (name) => tokenizerPlan(createKubernetesProvider(), mode, name, {}),
      instanceName: `conformance-${mode === 'open' ? 'open' : 'proxy'}`,
    });
  },
);
