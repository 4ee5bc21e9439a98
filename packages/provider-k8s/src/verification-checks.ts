import type { ExecResultV2, InstanceDetailV2, VerifyCheckV2 } from '@keyward/core';

// Runs inside the agent container with its `node`; prints one JSON line. A connection that is
// refused means the packet got there: only a timeout or an unreachable network counts as blocked.
const probeScript = `
const net = require('node:net');
const dns = require('node:dns');
const fs = require('node:fs');
const connect = (host, port) => new Promise((resolve) => {
  if (!host) return resolve('no-address');
  const socket = net.connect({ host, port: Number(port), timeout: 3000 });
  socket.on('connect', () => { socket.destroy(); resolve('connected'); });
  socket.on('timeout', () => { socket.destroy(); resolve('timeout'); });
  socket.on('error', (error) => resolve(error.code || 'error'));
});
const lookup = (name) => new Promise((resolve) => dns.lookup(name, (error, address) => resolve(error ? (error.code || 'error') : 'resolved:' + address)));
(async () => {
  const result = {
    apiServer: await connect(process.env.KUBERNETES_SERVICE_HOST, process.env.KUBERNETES_SERVICE_PORT || 443),
    internet: await connect('1.1.1.1', 443),
    dns: await lookup('kubernetes.default.svc.cluster.local'),
    token: fs.existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token'),
  };
  console.log(JSON.stringify(result));
})();
`;

const blocked = new Set(['timeout', 'EHOSTUNREACH', 'ENETUNREACH', 'no-address', 'EACCES', 'EPERM']);

function parse(result: ExecResultV2): Record<string, unknown> | undefined {
  try {
    return JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function check(
  name: string,
  description: string,
  judge: (probe: Record<string, unknown>) => { passed: boolean; evidence: string },
): VerifyCheckV2 {
  return {
    name,
    description,
    exec: { container: 'agent', command: ['node', '-'], stdin: probeScript, timeoutSeconds: 30 },
    judge(result) {
      const probe = parse(result);
      if (!probe) {
        return {
          passed: false,
          evidence: `the probe did not run in the agent (exit ${result.exitCode}; it needs node on the PATH)`,
        };
      }
      return judge(probe);
    },
  };
}

/** The Kubernetes target's own isolation checks, run in the agent container like the sidecars'. */
export function kubernetesVerificationChecks(instance: InstanceDetailV2): VerifyCheckV2[] {
  const checks: VerifyCheckV2[] = [
    check(
      'no-service-account-token',
      'The agent pod has no Kubernetes API credentials mounted.',
      (probe) => ({
        passed: probe['token'] === false,
        evidence: probe['token'] ? 'a service account token is mounted' : 'no token file',
      }),
    ),
  ];
  if (instance.networkMode !== 'proxy-only') return checks;
  checks.push(
    check(
      'api-server-blocked',
      'The agent cannot open a connection to the Kubernetes API server.',
      (probe) => ({
        passed: blocked.has(String(probe['apiServer'])),
        evidence: `connect to the API server: ${String(probe['apiServer'])}`,
      }),
    ),
    check(
      'direct-egress-blocked',
      'The agent cannot reach the internet except through its sidecars.',
      (probe) => ({
        passed: blocked.has(String(probe['internet'])),
        evidence: `connect to 1.1.1.1:443: ${String(probe['internet'])}`,
      }),
    ),
    check('dns-blocked', 'The agent cannot resolve names (no DNS to exfiltrate through).', (probe) => ({
      passed: !String(probe['dns']).startsWith('resolved'),
      evidence: `lookup kubernetes.default.svc.cluster.local: ${String(probe['dns'])}`,
    })),
  );
  return checks;
}
