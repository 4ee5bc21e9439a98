import { KeywardError } from '@keyward/core';
import { buildImage, type ImageBuildProgress, type ImageDefinition, imageDefinitions } from '@keyward/images';
import type Docker from 'dockerode';

/** What the demo runs: the tokenizer, the stand-in agent, the demo API and provider-local's network helper. */
export const demoImageDefinitions: readonly ImageDefinition[] = [
  imageDefinitions.tokenizer,
  imageDefinitions.agentStandIn,
  imageDefinitions.demoUpstream,
  imageDefinitions.networkHelper,
];

export interface DemoImagesOptions {
  onProgress?: (event: ImageBuildProgress) => void;
  signal?: AbortSignal;
}

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
  const result: DemoImagesResult = { built: [], reused: [] };
  for (const definition of demoImageDefinitions) {
    options.signal?.throwIfAborted();
    try {
      const outcome = await buildImage(docker, definition, {
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      });
      (outcome.built ? result.built : result.reused).push(outcome.image);
    } catch (error) {
      throw new KeywardError({
        code: 'IMAGE_BUILD_FAILED',
        message: `Building the image ${definition.name} failed: ${(error as Error).message}. Run \`pnpm images\` to see the full build output.`,
        cause: error,
      });
    }
  }
  return result;
}
