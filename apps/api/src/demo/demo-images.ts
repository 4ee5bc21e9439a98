import { KeywardError, registerErrorCodes } from '@keyward/core';
import type { ImageBuildProgress, ImageDefinition } from '@keyward/images';
import type Docker from 'dockerode';

// Not a core code: the demo is what throws it, so the demo registers it.
registerErrorCodes('demo', {
  IMAGE_BUILD_FAILED: {
    httpStatus: 502,
    description: 'The images the demo runs could not be built or their sources could not be loaded.',
  },
});

// @keyward/images finds its programs (sources in a checkout, `dist` in an install) when it
// loads: load it only when the demo runs, so every other command works without it.
export async function loadImages(): Promise<typeof import('@keyward/images')> {
  try {
    return await import('@keyward/images');
  } catch (error) {
    throw new KeywardError({
      code: 'IMAGE_BUILD_FAILED',
      message: `keyward demo builds its images with @keyward/images and could not load it (${(error as Error).message}). Reinstall keyward (\`npm install -g @keyward/api\`), or from a checkout run \`bash scripts/setup.sh && pnpm demo\`.`,
      cause: error,
    });
  }
}

/** What the demo runs: the tokenizer, the stand-in agent, the demo API and provider-local's network helper. */
export async function demoImageDefinitions(): Promise<ImageDefinition[]> {
  const { imageDefinitions } = await loadImages();
  return [
    imageDefinitions.tokenizer,
    imageDefinitions.agentStandIn,
    imageDefinitions.demoUpstream,
    imageDefinitions.networkHelper,
  ];
}

export interface DemoImagesOptions {
  onProgress?: (event: ImageBuildProgress) => void;
  signal?: AbortSignal;
  /** Sidecars added with `--with`: their real images (LiteLLM, the collector) are built by scripts. */
  extras?: readonly DemoExtra[];
}

/** The sidecars `keyward demo --with` adds next to the tokenizer. */
export type DemoExtra = 'litellm' | 'otel';

export interface DemoImagesResult {
  built: string[];
  reused: string[];
}

/**
 * Builds the images the demo needs, skipping each one whose content is unchanged
 * (`buildImage` compares a content digest label), so a second run builds nothing.
 */
export async function ensureDemoImages(
  docker: Docker,
  options: DemoImagesOptions,
): Promise<DemoImagesResult> {
  const { buildImage } = await loadImages();
  const result: DemoImagesResult = { built: [], reused: [] };
  // Base images (the Node.js runtime) are built on the way, reported only as progress:
  // count them too, so "Built N image(s)" matches the build lines printed above it.
  const onProgress = (event: ImageBuildProgress) => {
    if (event.type === 'built' && !result.built.includes(event.image)) result.built.push(event.image);
    options.onProgress?.(event);
  };
  for (const definition of await demoImageDefinitions()) {
    options.signal?.throwIfAborted();
    try {
      const outcome = await buildImage(docker, definition, { onProgress });
      if (!outcome.built) result.reused.push(outcome.image);
    } catch (error) {
      throw new KeywardError({
        code: 'IMAGE_BUILD_FAILED',
        message: `Building the image ${definition.name} failed: ${(error as Error).message}. Run \`keyward images build --verbose\` to see the full build output.`,
        cause: error,
      });
    }
  }
  const { buildPrebuiltImage, prebuiltImageDefinitions } = await loadImages();
  const prebuilt = {
    litellm: prebuiltImageDefinitions.litellm,
    otel: prebuiltImageDefinitions.otelCollector,
  };
  for (const extra of options.extras ?? []) {
    options.signal?.throwIfAborted();
    const definition = prebuilt[extra];
    try {
      const outcome = await buildPrebuiltImage(docker, definition, { onProgress });
      if (outcome.built && !result.built.includes(outcome.image)) result.built.push(outcome.image);
      if (!outcome.built) result.reused.push(outcome.image);
    } catch (error) {
      throw new KeywardError({
        code: 'IMAGE_BUILD_FAILED',
        message: `Building the image ${definition.name} failed: ${(error as Error).message}. Run \`keyward images build ${extra === 'otel' ? 'otelCollector' : 'litellm'} --verbose\` to see the full build output.`,
        cause: error,
      });
    }
  }
  return result;
}
