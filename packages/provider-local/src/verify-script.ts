/**
 * The self-test that runs INSIDE the agent container (`node -`, script on stdin).
 * It reads the sealed token and proxy settings from its own environment, like a
 * skill would; no credential value travels in argv or in this script. Its config
 * (URLs, the credential's variable suffix, the network mode, an optional
 * self-sealed token the agent could have made itself) comes in KEYWARD_VERIFY as
 * JSON and holds nothing secret. It prints one JSON line.
 */
export const verifyScript = String.raw`
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const config = JSON.parse(process.env.KEYWARD_VERIFY || '{}');
const env = process.env;

function connectDirect(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(port) });
    const timer = setTimeout(() => { socket.destroy(); resolve('timeout after 3 s'); }, 3000);
    socket.on('connect', () => { clearTimeout(timer); socket.destroy(); resolve('connected'); });
    socket.on('error', (error) => { clearTimeout(timer); resolve(error.code || error.message); });
  });
}

function viaProxy(target, headers) {
  return new Promise((resolve) => {
    const proxy = new URL(env.TOKENIZER_PROXY_URL);
    const url = new URL(target);
    // The tokenizer only rewrites plaintext requests; it upgrades to TLS upstream.
    url.protocol = 'http:';
    const client = proxy.protocol === 'https:' ? https : http;
    const request = client.request(
      { host: proxy.hostname, port: proxy.port || 80, method: 'GET', path: url.href, headers: { host: url.host, ...headers }, timeout: 10000 },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => { if (body.length < 300) body += chunk; });
        response.on('end', () => resolve({ status: response.statusCode, body: body.slice(0, 160).replace(/\s+/g, ' ') }));
      },
    );
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error) => resolve({ status: 0, body: error.code || error.message }));
    request.end();
  });
}

(async () => {
  const checks = [];
  const keys = Object.keys(env).filter((key) => key.startsWith('TOKENIZER_CRED_')).map((key) => key.slice(15)).sort();
  const key = config.credentialKey || keys[0];
  const hosts = key ? (env['TOKENIZER_HOSTS_' + key] || '').split(',').filter(Boolean) : [];
  const allowedUrl = config.allowedUrl || (hosts[0] ? 'https://' + hosts[0] + '/' : undefined);
  const unboundUrl = config.unboundUrl || 'https://unbound.keyward.invalid/';

  const directTargets = [];
  if (config.directUrl) directTargets.push(new URL(config.directUrl));
  else {
    if (allowedUrl) directTargets.push(new URL(allowedUrl));
    directTargets.push(new URL('https://1.1.1.1/'));
  }
  const directResults = [];
  for (const target of directTargets) {
    const port = target.port || (target.protocol === 'https:' ? 443 : 80);
    directResults.push({ target: target.hostname + ':' + port, outcome: await connectDirect(target.hostname, port) });
  }
  const evidence = directResults.map((result) => 'direct ' + result.target + ' -> ' + result.outcome).join('; ');
  if (config.mode === 'proxy-only') {
    checks.push({
      name: 'direct-egress-blocked',
      passed: directResults.every((result) => result.outcome !== 'connected'),
      evidence,
    });
  } else {
    checks.push({ name: 'direct-egress-open-mode', passed: true, evidence: 'network mode "open" allows direct egress by design; observed: ' + evidence });
  }

  if (!key || !env.TOKENIZER_PROXY_URL || !allowedUrl) {
    checks.push({ name: 'proxied-request-injected', passed: false, evidence: 'the agent has no TOKENIZER_PROXY_URL or TOKENIZER_CRED_* variable (no tokenizer credential deployed)' });
  } else {
    const sealed = env['TOKENIZER_CRED_' + key];
    const auth = env['TOKENIZER_AUTH_' + key];
    const headers = { 'proxy-tokenizer': sealed };
    if (auth) headers['proxy-authorization'] = 'Bearer ' + auth;
    const withToken = await viaProxy(allowedUrl, headers);
    checks.push({
      name: 'proxied-request-injected',
      passed: withToken.status >= 200 && withToken.status < 400,
      evidence: 'GET ' + allowedUrl + ' via ' + env.TOKENIZER_PROXY_URL + ' with TOKENIZER_CRED_' + key + ' -> ' + withToken.status + (withToken.status >= 400 || withToken.status === 0 ? ' ' + withToken.body : ''),
    });
    const unbound = await viaProxy(unboundUrl, headers);
    checks.push({
      name: 'unbound-host-refused',
      passed: unbound.status >= 400 && unbound.status < 500,
      evidence: 'GET ' + unboundUrl + ' with TOKENIZER_CRED_' + key + ' -> ' + unbound.status + ' ' + unbound.body,
    });
  }
  if (config.selfSealedToken) {
    // A token sealed outside keyward with the public seal key, sent alone: only a 407
    // (refused before any dial) shows the proxy is no open egress for self-made tokens.
    const forged = await viaProxy(unboundUrl, { 'proxy-tokenizer': config.selfSealedToken });
    checks.push({
      name: 'self-sealed-token-refused',
      passed: forged.status === 407,
      evidence: 'GET ' + unboundUrl + ' with only a self-sealed Proxy-Tokenizer -> ' + forged.status + ' ' + forged.body,
    });
  }
  process.stdout.write(JSON.stringify({ checks }) + '\n');
})();
`;
