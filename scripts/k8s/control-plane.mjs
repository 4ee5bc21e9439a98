// A real Kubernetes control plane for tests, started the way controller-runtime's
// envtest starts one: etcd, kube-apiserver and kube-controller-manager on 127.0.0.1
// with throwaway certificates, and no nodes (pods are created but never run).
//
//   import { buildControlPlane, startControlPlane } from '../../scripts/k8s/control-plane.mjs';
//   await buildControlPlane();              // once per machine: long when cold (see README), instant after
//   const controlPlane = await startControlPlane();
//   // controlPlane.kubeconfigPath, .server, .caPem, .clientCertificatePem, .clientKeyPem
//   await controlPlane.stop();
//
// Each server runs under a small shell supervisor that holds a pipe from this
// process: when this process goes away for any reason (even SIGKILL), the pipe
// closes and the supervisor stops its server, and a janitor removes the temporary
// directory. stop() does the same on purpose and waits for it.
import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const scriptDirectory = dirname(fileURLToPath(import.meta.url));
const buildScript = join(scriptDirectory, 'build-control-plane.sh');

/** The first address of the service range: the `kubernetes` Service's cluster IP. */
const serviceClusterIpRange = '10.0.0.0/24';
const kubernetesServiceIp = '10.0.0.1';

/**
 * Builds the binaries if they are not in the cache yet (see build-control-plane.sh)
 * and returns their directory. Progress goes to this process's stderr.
 * @param {{ signal?: AbortSignal }} [options]
 * @returns {Promise<{ binDirectory: string }>}
 */
export async function buildControlPlane(options = {}) {
  const { stdout } = await runBuildScript([], options.signal, 'inherit');
  return { binDirectory: stdout.trim() };
}

/**
 * The bin directory if the binaries are built, else an error that says how to build them.
 * @returns {Promise<string>}
 */
async function builtBinDirectory(signal) {
  try {
    const { stdout } = await runBuildScript(['--check'], signal, 'pipe');
    return stdout.trim();
  } catch (error) {
    throw new Error(
      `the Kubernetes control plane is not built on this machine: run scripts/k8s/build-control-plane.sh ` +
        `(once per machine, tens of minutes) or call buildControlPlane() first (${String(error.stderr ?? error.message).trim()})`,
    );
  }
}

function runBuildScript(argumentsList, signal, stderr) {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [buildScript, ...argumentsList], {
      stdio: ['ignore', 'pipe', stderr],
      signal,
    });
    let stdout = '';
    let errorOutput = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk) => {
      errorOutput += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve({ stdout });
      else reject(Object.assign(new Error(`${buildScript} exited with ${code}`), { stderr: errorOutput }));
    });
  });
}

/** Asks the kernel for a free loopback port (another process may take it before we use it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// A minimal config so `openssl req` adds only the extensions given with -addext.
const opensslConfig = '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n';

async function createCertificates(directory) {
  const config = join(directory, 'openssl.cnf');
  writeFileSync(config, opensslConfig);
  const path = (name) => join(directory, name);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const openssl = (argumentsList) =>
    run('openssl', [
      'req',
      '-x509',
      '-new',
      '-config',
      config,
      '-days',
      '2',
      ...newKey,
      ...argumentsList,
    ]).catch((error) => {
      if (error.code === 'ENOENT') {
        throw new Error(
          'openssl is missing: run scripts/k8s/build-control-plane.sh (it installs it) or apt-get install openssl',
        );
      }
      throw error;
    });
  await openssl([
    ...['-subj', '/CN=keyward-test-ca', '-keyout', path('ca.key'), '-out', path('ca.crt')],
    ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    ...['-addext', 'subjectKeyIdentifier=hash'],
  ]);
  const signedByAuthority = [
    '-CA',
    path('ca.crt'),
    '-CAkey',
    path('ca.key'),
    '-addext',
    'basicConstraints=critical,CA:FALSE',
  ];
  const serverNames = [
    'DNS:localhost',
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
  ];
  const clientCertificate = (name, subject) =>
    openssl([
      ...[
        '-subj',
        subject,
        '-keyout',
        path(`${name}.key`),
        '-out',
        path(`${name}.crt`),
        ...signedByAuthority,
      ],
      ...['-addext', 'keyUsage=critical,digitalSignature', '-addext', 'extendedKeyUsage=clientAuth'],
    ]);
  await Promise.all([
    openssl([
      ...['-subj', '/CN=kube-apiserver', '-keyout', path('apiserver.key'), '-out', path('apiserver.crt')],
      ...signedByAuthority,
      ...['-addext', `subjectAltName=IP:127.0.0.1,IP:${kubernetesServiceIp},${serverNames.join(',')}`],
      ...['-addext', 'keyUsage=critical,digitalSignature', '-addext', 'extendedKeyUsage=serverAuth'],
    ]),
    // Group system:masters: the admin may do anything, RBAC never refuses it.
    clientCertificate('admin', '/O=system:masters/CN=keyward-admin'),
    // The controller manager runs without per-controller service accounts, so
    // it needs the rights of all controllers together.
    clientCertificate('controller-manager', '/O=system:masters/CN=system:kube-controller-manager'),
  ]);
  // Service account tokens are signed with this key (ES256).
  const serviceAccountKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(
    path('service-account.key'),
    serviceAccountKey.privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  writeFileSync(
    path('service-account.pub'),
    serviceAccountKey.publicKey.export({ type: 'spki', format: 'pem' }),
  );
}

function kubeconfig({ server, caPem, certificatePem, keyPem, user }) {
  const base64 = (text) => Buffer.from(text).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: keyward-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${base64(caPem)}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    client-certificate-data: ${base64(certificatePem)}`,
    `    client-key-data: ${base64(keyPem)}`,
    'contexts:',
    '- name: keyward-test',
    '  context:',
    '    cluster: keyward-test',
    `    user: ${user}`,
    'current-context: keyward-test',
    '',
  ].join('\n');
}

// Runs "$@" in the background and stops it when stdin (a pipe from the test
// process) reaches end of file; exits with the server's status.
const supervisorScript = `
exec 3<&0 0</dev/null
"$@" &
server=$!
( cat <&3 >/dev/null; kill -TERM "$server" 2>/dev/null ) &
exec 3<&-
wait "$server"
`;

// Waits for end of file on stdin, gives the servers time to exit, then removes the directory.
const janitorScript = `
cat >/dev/null
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  rm -rf "$1" 2>/dev/null
  [ -e "$1" ] || exit 0
  sleep 1
done
`;

function startSupervised(name, binary, argumentsList, logPath) {
  const log = openSync(logPath, 'a');
  const child = spawn('sh', ['-c', supervisorScript, `keyward-${name}`, binary, ...argumentsList], {
    detached: true,
    stdio: ['pipe', log, log],
  });
  closeSync(log);
  const supervised = { name, child, logPath, exited: false, exitCode: null };
  supervised.exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      supervised.exited = true;
      supervised.exitCode = code ?? signal;
      resolve();
    });
  });
  child.on('error', () => {});
  // A forgotten stop() must not keep the test process alive.
  child.unref();
  child.stdin.unref();
  return supervised;
}

function logTail(path) {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-25).join('\n');
  } catch {
    return '';
  }
}

function sleep(milliseconds, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, milliseconds);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** GET over HTTPS with the admin's client certificate; resolves { status, body }, never rejects on HTTP errors. */
function get(url, tls, signal) {
  return new Promise((resolve) => {
    const outgoing = request(url, { ...tls, timeout: 2000, signal }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode, body }));
    });
    outgoing.on('timeout', () => outgoing.destroy(new Error('timeout')));
    outgoing.on('error', (error) => resolve({ status: 0, body: error.message }));
    outgoing.end();
  });
}

async function waitFor(description, check, { processes, signal, timeoutMilliseconds }) {
  const deadline = Date.now() + timeoutMilliseconds;
  let last = '';
  for (;;) {
    signal?.throwIfAborted();
    const crashed = processes.find((supervised) => supervised.exited);
    if (crashed) {
      throw new Error(
        `${crashed.name} exited (${crashed.exitCode}) while waiting for ${description}; its log:\n${logTail(crashed.logPath)}`,
      );
    }
    const result = await check();
    signal?.throwIfAborted();
    if (result === true) return;
    last = result;
    if (Date.now() > deadline) {
      // The process waited on is the last one started: its log says why it never answered.
      const waitedOn = processes.at(-1);
      throw new Error(
        `timed out after ${timeoutMilliseconds} ms waiting for ${description} (last answer: ${last})` +
          (waitedOn ? `; ${waitedOn.name}'s log:\n${logTail(waitedOn.logPath)}` : ''),
      );
    }
    await sleep(100, signal);
  }
}

/**
 * Starts etcd, kube-apiserver and kube-controller-manager on 127.0.0.1.
 *
 * Resolves once the API server's /readyz answers ok and the controller manager has
 * created the `default` ServiceAccount (so Deployments will get ReplicaSets and Pods).
 *
 * @param {{
 *   signal?: AbortSignal,
 *   binDirectory?: string,
 *   timeoutMilliseconds?: number,
 *   keepDirectory?: boolean,
 * }} [options] keepDirectory leaves the data, certificates and logs for debugging.
 */
export async function startControlPlane(options = {}) {
  const { signal, timeoutMilliseconds = 60_000 } = options;
  const startedAt = performance.now();
  // Milliseconds each step took, for the README's timings and slow-start reports.
  const startTimings = {};
  let stepStartedAt = startedAt;
  const stepDone = (name) => {
    const now = performance.now();
    startTimings[name] = Math.round(now - stepStartedAt);
    stepStartedAt = now;
  };
  const binDirectory = options.binDirectory ?? (await builtBinDirectory(signal));
  const directory = mkdtempSync(join(tmpdir(), 'keyward-control-plane-'));
  const path = (name) => join(directory, name);

  const janitor = options.keepDirectory
    ? undefined
    : spawn('sh', ['-c', janitorScript, 'keyward-control-plane-janitor', directory], {
        detached: true,
        stdio: ['pipe', 'ignore', 'ignore'],
      });
  janitor?.unref();
  janitor?.stdin.unref();

  /** @type {ReturnType<typeof startSupervised>[]} */
  const processes = [];
  let stopped;
  // force: a failed or aborted start kills at once; a graceful stop of a
  // starting kube-apiserver on a busy machine takes seconds.
  const stop = ({ force = false } = {}) => {
    stopped ??= (async () => {
      process.off('exit', killOnExit);
      // Reverse start order: the API server before etcd, so it does not log etcd errors.
      for (const supervised of [...processes].reverse()) {
        // Keep this process alive until the servers are gone.
        supervised.child.ref();
        supervised.child.stdin.end();
        if (force) killGroup(supervised.child, 'SIGKILL');
        const killTimer = setTimeout(() => killGroup(supervised.child, 'SIGKILL'), 10_000);
        await supervised.exit;
        clearTimeout(killTimer);
        // The supervisor is gone; take its leftovers (the stdin watcher) with it.
        killGroup(supervised.child, 'SIGKILL');
      }
      if (janitor) {
        const janitorExit = new Promise((resolve) => janitor.on('exit', resolve));
        janitor.ref();
        janitor.stdin.end();
        await janitorExit;
      }
    })();
    return stopped;
  };
  // On a normal exit the pipes close anyway; this only makes the servers go at once.
  const killOnExit = () => {
    for (const supervised of processes) killGroup(supervised.child, 'SIGTERM');
  };
  process.on('exit', killOnExit);

  try {
    await createCertificates(directory);
    stepDone('certificates');
    const [etcdClientPort, etcdPeerPort, securePort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
    ]);
    const etcdClientUrl = `http://127.0.0.1:${etcdClientPort}`;
    const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const server = `https://127.0.0.1:${securePort}`;
    const caPem = readFileSync(path('ca.crt'), 'utf8');
    const clientCertificatePem = readFileSync(path('admin.crt'), 'utf8');
    const clientKeyPem = readFileSync(path('admin.key'), 'utf8');
    const tls = { ca: caPem, cert: clientCertificatePem, key: clientKeyPem };
    const waitOptions = { processes, signal, timeoutMilliseconds };

    processes.push(
      startSupervised(
        'etcd',
        join(binDirectory, 'etcd'),
        [
          '--name=keyward-test',
          `--data-dir=${path('etcd')}`,
          `--listen-client-urls=${etcdClientUrl}`,
          `--advertise-client-urls=${etcdClientUrl}`,
          `--listen-peer-urls=${etcdPeerUrl}`,
          `--initial-advertise-peer-urls=${etcdPeerUrl}`,
          `--initial-cluster=keyward-test=${etcdPeerUrl}`,
          // Test data is thrown away: skipping fsync makes every write cheap.
          '--unsafe-no-fsync',
          '--log-level=info',
        ],
        path('etcd.log'),
      ),
    );
    await waitFor(
      'etcd /health',
      async () => {
        try {
          const response = await fetch(`${etcdClientUrl}/health`, {
            signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(2000)]) : AbortSignal.timeout(2000),
          });
          const body = await response.text();
          return response.ok && body.includes('"health":"true"') ? true : body;
        } catch (error) {
          return error.message;
        }
      },
      waitOptions,
    );
    stepDone('etcd');

    processes.push(
      startSupervised(
        'kube-apiserver',
        join(binDirectory, 'kube-apiserver'),
        [
          '--advertise-address=127.0.0.1',
          '--bind-address=127.0.0.1',
          `--secure-port=${securePort}`,
          `--etcd-servers=${etcdClientUrl}`,
          `--cert-dir=${path('apiserver-certificates')}`,
          `--tls-cert-file=${path('apiserver.crt')}`,
          `--tls-private-key-file=${path('apiserver.key')}`,
          `--client-ca-file=${path('ca.crt')}`,
          `--service-cluster-ip-range=${serviceClusterIpRange}`,
          '--allow-privileged=true',
          '--authorization-mode=RBAC',
          `--service-account-issuer=${server}/`,
          `--service-account-key-file=${path('service-account.pub')}`,
          `--service-account-signing-key-file=${path('service-account.key')}`,
          // 127.0.0.1 is not a valid Endpoints address, so the `kubernetes`
          // Service gets no endpoints rather than an error every 10 s.
          '--endpoint-reconciler-type=none',
        ],
        path('kube-apiserver.log'),
      ),
    );
    await waitFor(
      'kube-apiserver /readyz',
      async () => {
        const { status, body } = await get(`${server}/readyz`, tls, signal);
        return status === 200 ? true : `${status} ${body.slice(0, 200)}`;
      },
      waitOptions,
    );
    stepDone('kubeApiserver');

    const controllerManagerKubeconfig = path('controller-manager.kubeconfig');
    writeFileSync(
      controllerManagerKubeconfig,
      kubeconfig({
        server,
        caPem,
        certificatePem: readFileSync(path('controller-manager.crt'), 'utf8'),
        keyPem: readFileSync(path('controller-manager.key'), 'utf8'),
        user: 'system:kube-controller-manager',
      }),
    );
    processes.push(
      startSupervised(
        'kube-controller-manager',
        join(binDirectory, 'kube-controller-manager'),
        [
          `--kubeconfig=${controllerManagerKubeconfig}`,
          '--controllers=*',
          '--leader-elect=false',
          '--use-service-account-credentials=false',
          `--service-account-private-key-file=${path('service-account.key')}`,
          `--root-ca-file=${path('ca.crt')}`,
          `--cluster-signing-cert-file=${path('ca.crt')}`,
          `--cluster-signing-key-file=${path('ca.key')}`,
          // No HTTPS endpoint of its own: readiness is seen through its work.
          '--secure-port=0',
        ],
        path('kube-controller-manager.log'),
      ),
    );
    await waitFor(
      'kube-controller-manager to create the default ServiceAccount',
      async () => {
        const { status } = await get(
          `${server}/api/v1/namespaces/default/serviceaccounts/default`,
          tls,
          signal,
        );
        return status === 200 ? true : `${status}`;
      },
      waitOptions,
    );
    stepDone('kubeControllerManager');

    const kubeconfigPath = path('admin.kubeconfig');
    writeFileSync(
      kubeconfigPath,
      kubeconfig({
        server,
        caPem,
        certificatePem: clientCertificatePem,
        keyPem: clientKeyPem,
        user: 'keyward-admin',
      }),
    );
    return {
      kubeconfigPath,
      server,
      caPem,
      clientCertificatePem,
      clientKeyPem,
      directory,
      binDirectory,
      logPaths: Object.fromEntries(processes.map((supervised) => [supervised.name, supervised.logPath])),
      startMilliseconds: Math.round(performance.now() - startedAt),
      startTimings,
      stop: () => stop(),
    };
  } catch (error) {
    await stop({ force: true });
    throw error;
  }
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}
