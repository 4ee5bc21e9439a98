// A separate keyward process contending for an instance's rotation Lease (bundled with esbuild
// by the Lease test). argv: kubeconfig, namespace, identity, hold ms, "release" | "crash".
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesApi } from '../../src/kubernetes-api.js';
import { acquireLease } from '../../src/rotation-lease.js';

const [kubeconfigPath, namespace, identity, holdMs, ending] = process.argv.slice(2);
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(kubeconfigPath as string);
const api = new KubernetesApi({ kubeConfig });
const say = (event: string) => console.log(JSON.stringify({ event, identity, at: Date.now() }));

say('waiting');
const lease = await acquireLease(api, {
  namespace: namespace as string,
  name: 'kw-contended-rotation',
  labels: { 'keyward.dev/managed-by': 'keyward', 'keyward.dev/instance': 'contended' },
  identity: identity as string,
  durationSeconds: 3,
  waitMs: 30_000,
  pollMs: 100,
  clock: () => new Date(),
  purpose: 'rotation',
});
say('acquired');
await new Promise((resolve) => setTimeout(resolve, Number(holdMs)));
if (ending === 'crash') {
  say('crashing');
  process.kill(process.pid, 'SIGKILL');
}
say('releasing');
await lease.release();
say('released');
