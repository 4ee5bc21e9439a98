import { credentialVariableNames } from './credential-names.js';
import type { TokenizerProcessorConfig } from './tokenizer-config.js';

export interface SkillCredential {
  name: string;
  allowedHosts: readonly string[];
  headerDst?: string | undefined;
  headerFmt?: string | undefined;
  processor?: TokenizerProcessorConfig | undefined;
}

export interface TokenizerSkillOptions {
  /** What the agent dials: `http://tokenizer:4001` (proxy-only) or `http://localhost:4001` (open). */
  proxyUrl: string;
  credentials: readonly SkillCredential[];
}

/** Where the skill lands, relative to the agent's skills directory. */
export const TOKENIZER_SKILL_PATH = 'tokenizer/SKILL.md';

// Characters that would change the meaning of a name in Markdown.
function escapeMarkdown(text: string): string {
  return text.replace(/([\\`*_[\]<>|#])/g, '\\$1');
}

function code(text: string): string {
  // A backtick inside needs a longer fence.
  return text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``;
}

function describeInjection(credential: SkillCredential): string[] {
  const processor = credential.processor;
  if (processor === undefined) {
    const header = credential.headerDst ?? 'Authorization';
    const format = credential.headerFmt ?? 'Bearer %s';
    return [
      `- What the proxy does: sets the header ${code(`${header}: ${format.replace('%s', '<credential>')}`)} (replacing any value you send).`,
    ];
  }
  switch (processor.type) {
    case 'inject_hmac': {
      const header = processor.dst ?? 'Authorization';
      const format = processor.fmt ?? 'Bearer %x';
      return [
        `- What the proxy does: computes HMAC-SHA256 of the request body with the credential and sets ${code(`${header}: ${format.replace(/%[xX]/, '<hex signature>')}`)}.`,
      ];
    }
    case 'inject_body':
    case 'oauth2_body': {
      const placeholder = processor.placeholder ?? '{{ACCESS_TOKEN}}';
      return [
        `- What the proxy does: replaces every ${code(placeholder)} in the request body with the credential. Write that placeholder where the credential belongs.`,
      ];
    }
    case 'oauth2':
      return [
        `- What the proxy does: sets ${code('Authorization: Bearer <access token>')} (replacing any value you send).`,
      ];
    case 'sigv4':
      return [
        `- What the proxy does: re-signs an AWS Signature V4 request. Sign the request yourself as usual with access key id ${code(processor.accessKeyId)} and any placeholder secret key (for example ${code('placeholder')}); the proxy replaces the signature with one made with the real secret key.`,
      ];
    case 'jwt':
    case 'client_credentials':
    case 'github_app': {
      const endpoint =
        processor.type === 'github_app'
          ? 'the GitHub installation token endpoint'
          : `the token endpoint${processor.tokenUrl ? ` (${code(processor.tokenUrl.replace(/^https:/, 'http:'))})` : ''}`;
      return [
        `- What the proxy does: exchanges the credential for an access token. Send a ${code('POST')} to ${endpoint} through the proxy with this credential; the JSON response holds ${code('sealed_token')} instead of the real token. Use that value as ${code('Proxy-Tokenizer')} (with the same proxy password) for the API calls that follow.`,
      ];
    }
  }
}

function exampleTarget(host: string): string {
  return `http://${host}/`;
}

function pickExample(credentials: readonly SkillCredential[]): SkillCredential | undefined {
  return credentials.find((credential) => credential.processor === undefined) ?? credentials[0];
}

function frontmatterDescription(options: TokenizerSkillOptions): string {
  const listed = options.credentials
    .map((credential) => `${credential.name} (${credential.allowedHosts.join(', ')})`)
    .join('; ');
  const base = `Call external HTTP APIs with credentials you cannot see, through the tokenizer proxy at ${options.proxyUrl}, which adds the real credential to each request.`;
  const text = listed ? `${base} Credentials: ${listed}.` : `${base} No credentials are configured yet.`;
  // Skill loaders cap descriptions; the body lists everything anyway.
  return text.length > 1000 ? `${text.slice(0, 997)}...` : text;
}

/**
 * The SKILL.md that teaches the agent to use the proxy: every credential (kept ones
 * too) with its hosts and env var names, the rules, and examples that run as written.
 * Only names go in here, never values.
 */
export function generateTokenizerSkill(options: TokenizerSkillOptions): string {
  const { proxyUrl, credentials } = options;
  const lines: string[] = [
    '---',
    'name: tokenizer',
    `description: ${JSON.stringify(frontmatterDescription(options))}`,
    '---',
    '',
    '# Tokenizer: calling APIs through the credential proxy',
    '',
    '## What this is',
    '',
    'A proxy next to you, the tokenizer, holds the real API credentials. For each credential you hold two values:',
    'a **sealed token** that only the proxy can open, and a **proxy password** that proves the request comes from you.',
    'Send a request through the proxy with both, and the proxy adds the real credential on the way out, but only',
    'to the hosts that credential is bound to. You never see the credential, and you do not need to.',
    '',
    '## Proxy URL',
    '',
    `${code(proxyUrl)}, also in the environment variable ${code('TOKENIZER_PROXY_URL')}.`,
    '',
    '## Credentials',
    '',
  ];
  if (credentials.length === 0) {
    lines.push('No credentials are configured yet. Ask the operator to add one.', '');
  }
  for (const credential of credentials) {
    const variables = credentialVariableNames(credential.name);
    lines.push(
      `### ${escapeMarkdown(credential.name)}`,
      '',
      `- Hosts: ${credential.allowedHosts.map(code).join(', ')} (also in ${code(`$${variables.hosts}`)}, comma-separated)`,
      `- Sealed token: ${code(`$${variables.token}`)}`,
      `- Proxy password: ${code(`$${variables.auth}`)}`,
      ...describeInjection(credential),
      '',
    );
  }
  lines.push(
    '## Rules',
    '',
    `1. Write ${code('http://')} URLs, for example ${code('http://api.github.com/user')}, never ${code('https://')}.`,
    '   The proxy has to read the request to add the credential; it connects to the API over HTTPS itself',
    '   (port 443, or the port you write in the URL).',
    '2. Send the request to the proxy as a forward proxy (the full URL in the request line, not CONNECT), with two headers:',
    `   ${code('Proxy-Tokenizer: <sealed token>')} and ${code('Proxy-Authorization: Bearer <proxy password>')},`,
    '   both taken from the same credential.',
    '3. A credential works only for its hosts, written exactly as listed (including any port). Every other host is refused.',
    '4. Do not send the credential header yourself; the proxy sets it. The header and its format are sealed into the',
    `   token: parameters after the token (${code('Proxy-Tokenizer: <token>; {"dst":…,"fmt":…}')}) cannot change them and are refused.`,
    '5. Keep the sealed token and proxy password in environment variables; do not print or paste them anywhere else.',
    '',
    '## When something fails',
    '',
    `- ${code('407')}: the proxy password is missing or does not belong to this sealed token, or the sealed token was not issued to you (tokens you seal yourself are refused).`,
    `- ${code('400')} with ${code('secret not valid for <host>')}: the host is not bound to this credential.`,
    `- ${code('400')} with ${code('proxied request must be HTTP')}: you used ${code('https://')} or port 443; use ${code('http://')}.`,
    `- ${code('400')} with ${code('bad request')}, or ${code('502')} with ${code('bad fmt')}: you asked for another header or format than the one sealed; send the token alone.`,
    `- ${code('502')}: the proxy could not open the sealed token or could not reach the API; check the host name.`,
    '',
    '## Examples',
    '',
  );
  const example = pickExample(credentials);
  if (example === undefined) {
    lines.push('Examples appear here once a credential is configured.', '');
    return `${lines.join('\n').trimEnd()}\n`;
  }
  const variables = credentialVariableNames(example.name);
  const host = example.allowedHosts[0] ?? 'api.example.com';
  const target = exampleTarget(host);
  lines.push(
    `These use the credential ${code(example.name)} and its host ${code(host)}. For another credential, change the`,
    'variable names and the URL.',
    '',
    '### curl',
    '',
    '```bash',
    'curl -sS -x "$TOKENIZER_PROXY_URL" \\',
    `  -H "Proxy-Tokenizer: $${variables.token}" \\`,
    `  -H "Proxy-Authorization: Bearer $${variables.auth}" \\`,
    `  "${target}"`,
    '```',
    '',
    `With ${code('http_proxy')} set, every curl call in the shell goes through the proxy:`,
    '',
    '```bash',
    'export http_proxy="$TOKENIZER_PROXY_URL"',
    `curl -sS -H "Proxy-Tokenizer: $${variables.token}" -H "Proxy-Authorization: Bearer $${variables.auth}" "${target}"`,
    '```',
    '',
    '### Node.js (built-in http, no dependencies)',
    '',
    `Save as ${code('call-api.mjs')} and run ${code('node call-api.mjs')}.`,
    '',
    '```js',
    "import http from 'node:http';",
    '',
    'const proxy = new URL(process.env.TOKENIZER_PROXY_URL);',
    `const target = new URL('${target}');`,
    '',
    'const request = http.request(',
    '  {',
    '    host: proxy.hostname,',
    '    port: proxy.port,',
    "    method: 'GET',",
    '    // Forward-proxy request: the full URL goes in the request line.',
    '    path: target.href,',
    '    headers: {',
    '      host: target.host,',
    `      'proxy-tokenizer': process.env.${variables.token},`,
    `      'proxy-authorization': \`Bearer \${process.env.${variables.auth}}\`,`,
    '    },',
    '  },',
    '  (response) => {',
    "    let body = '';",
    "    response.setEncoding('utf8');",
    "    response.on('data', (chunk) => {",
    '      body += chunk;',
    '    });',
    "    response.on('end', () => console.log(response.statusCode, body));",
    '  },',
    ');',
    "request.on('error', (error) => {",
    '  console.error(error.message);',
    '  process.exitCode = 1;',
    '});',
    'request.end();',
    '```',
    '',
    '### Node.js with undici',
    '',
    `Needs the ${code('undici')} package (${code('npm install undici')}). ${code('proxyTunnel: false')} makes undici send`,
    `plain forward-proxy requests instead of CONNECT; the proxy password goes in ${code('token')}.`,
    '',
    '```js',
    "import { fetch, ProxyAgent } from 'undici';",
    '',
    'const dispatcher = new ProxyAgent({',
    '  uri: process.env.TOKENIZER_PROXY_URL,',
    `  token: \`Bearer \${process.env.${variables.auth}}\`,`,
    '  proxyTunnel: false,',
    '});',
    `const response = await fetch('${target}', {`,
    '  dispatcher,',
    `  headers: { 'proxy-tokenizer': process.env.${variables.token} },`,
    '});',
    'console.log(response.status, await response.text());',
    '```',
    '',
    '### Python (requests)',
    '',
    '```python',
    'import os',
    '',
    'import requests',
    '',
    'response = requests.get(',
    `    "${target}",`,
    '    proxies={"http": os.environ["TOKENIZER_PROXY_URL"]},',
    '    headers={',
    `        "Proxy-Tokenizer": os.environ["${variables.token}"],`,
    `        "Proxy-Authorization": "Bearer " + os.environ["${variables.auth}"],`,
    '    },',
    '    timeout=30,',
    ')',
    'print(response.status_code, response.text)',
    '```',
    '',
  );
  return `${lines.join('\n').trimEnd()}\n`;
}
