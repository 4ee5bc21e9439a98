export {
  type BuildImageOptions,
  type BuildImageResult,
  buildImage,
  bundleProgram,
  contentLabel,
  ensureNodeRuntimeImage,
  ImageBuildError,
  renderDockerfile,
} from './build-image.js';
export {
  type BuildPrebuiltImageOptions,
  type BuildPrebuiltImageResult,
  buildPrebuiltImage,
  containerfileBaseImages,
  runBuildScript,
} from './build-prebuilt-image.js';
export { dockerFromEnvironment } from './docker-from-environment.js';
export {
  type ImageBase,
  type ImageBuildProgress,
  type ImageDefinition,
  imageReference,
  type PrebuiltImageDefinition,
} from './image-definition.js';
export {
  agentStandInImage,
  demoUpstreamImage,
  imageDefinitions,
  litellmImage,
  networkHelperImage,
  nonRootUser,
  otelCollectorImage,
  prebuiltImageDefinitions,
  repositoryRoot,
  tokenizerImage,
} from './image-definitions.js';
export { collectNodeRuntime, parseLddOutput } from './node-runtime.js';

export const VERSION = '0.1.0';
