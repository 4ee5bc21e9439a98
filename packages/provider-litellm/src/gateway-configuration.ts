import { stringify } from 'yaml';
import type { LitellmConfig, LitellmCredential, LitellmModel } from './litellm-config.js';

/** The sealed token of a credential, in LiteLLM's environment. */
export function sealedTokenVariable(credential: string): string {
  return `KEYWARD_SEALED_${credential.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** One proxy password for all of LiteLLM's sealed credentials: the tokenizer issues one per container and variable. */
export const PROXY_PASSWORD_VARIABLE = 'KEYWARD_PROXY_AUTH';
export const MASTER_KEY_VARIABLE = 'LITELLM_MASTER_KEY';
/** Stands where LiteLLM wants an API key; the tokenizer overwrites the header with the real one. */
export const API_KEY_PLACEHOLDER = 'sealed-by-keyward';

/**
 * The upstream as LiteLLM calls it: plain `http://` to the provider's host, which goes to
 * HTTP_PROXY (the tokenizer), which opens the sealed token, injects the key and speaks TLS
 * to the provider.
 */
export function upstreamBase(model: LitellmModel, credential: LitellmCredential): string {
  const path = model.apiPath ?? (model.model.startsWith('openai/') ? '/v1' : '');
  return `http://${credential.host}${path}`;
}

export interface GatewayConfigurationOptions {
  config: LitellmConfig;
  /**
   * A collector is there: `litellm_settings.callbacks` gains "otel" (LiteLLM's spans, children
   * of the caller's `traceparent`), and `forward_traceparent_to_llm_provider` passes the caller's
   * `traceparent` upstream, to the tokenizer, so one trace runs agent → LiteLLM → tokenizer.
   */
  telemetry: boolean;
}

/** LiteLLM's config.yaml: no key in it, only references to LiteLLM's own environment. */
export function gatewayConfiguration({ config, telemetry }: GatewayConfigurationOptions): string {
  const credentials = new Map(config.credentials.map((credential) => [credential.name, credential]));
  const model_list = config.models.map((model) => {
    const credential = credentials.get(model.credential) as LitellmCredential;
    return {
      model_name: model.name,
      litellm_params: {
        model: model.model,
        api_base: upstreamBase(model, credential),
        api_key: API_KEY_PLACEHOLDER,
        // `headers`, not `extra_headers`: LiteLLM replaces a model's extra_headers with the
        // request's own (the forwarded traceparent), and merges `headers` with them.
        headers: { 'Proxy-Tokenizer': `os.environ/${sealedTokenVariable(credential.name)}` },
      },
    };
  });
  const litellmSettings: Record<string, unknown> = { ...(config.settings?.litellm_settings ?? {}) };
  if (telemetry) {
    const callbacks = Array.isArray(litellmSettings['callbacks'])
      ? (litellmSettings['callbacks'] as unknown[])
      : [];
    litellmSettings['callbacks'] = [...new Set([...callbacks, 'otel'])];
    // LiteLLM puts it in the request's extra_headers, merged with the model's Proxy-Tokenizer header.
    litellmSettings['forward_traceparent_to_llm_provider'] ??= true;
  }
  return stringify({
    model_list,
    general_settings: { master_key: `os.environ/${MASTER_KEY_VARIABLE}` },
    ...(Object.keys(litellmSettings).length > 0 ? { litellm_settings: litellmSettings } : {}),
    ...(config.settings?.router_settings ? { router_settings: config.settings.router_settings } : {}),
  });
}
