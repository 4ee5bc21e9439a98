import { type Agent, request } from 'node:http';

export interface ProxyResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface ProxyRequestOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  agent?: Agent;
  /** Headers Node would add on its own that this request must not carry (e.g. `connection`). */
  omitHeaders?: string[];
}

/** Sends an absolute-form request to the proxy, the way an HTTP_PROXY client does. */
export function proxyRequest(
  proxyUrl: string,
  target: string,
  options: ProxyRequestOptions = {},
): Promise<ProxyResponse> {
  const proxy = new URL(proxyUrl);
  const headers: Record<string, string | string[]> = { ...options.headers };
  // Clients send the target's authority as Host (curl and Node proxy agents do).
  if (!Object.keys(headers).some((name) => name.toLowerCase() === 'host') && target.startsWith('http')) {
    headers.Host = target.replace(/^https?:\/\//, '').split(/[/?#]/)[0] as string;
  }
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: proxy.hostname,
        port: proxy.port,
        method: options.method ?? 'GET',
        path: target,
        headers,
        agent: options.agent ?? false,
        setHost: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        response.on('error', reject);
      },
    );
    for (const name of options.omitHeaders ?? []) outgoing.removeHeader(name);
    outgoing.on('error', reject);
    outgoing.end(options.body);
  });
}
