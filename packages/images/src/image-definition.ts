/** How an image's base layer is made. */
export type ImageBase =
  /** `FROM scratch` + the host's node binary and its shared libraries: no registry needed. */
  | 'scratch'
  /** `FROM node:20-slim`: for machines that can pull from a registry. */
  | 'registry';

export interface ImageDefinition {
  /** Repository name without registry, e.g. `keyward-tokenizer`. */
  name: string;
  tag: string;
  description: string;
  /** TypeScript or JavaScript entry bundled by esbuild into `/app/main.js`. */
  entry: string;
  /** Arguments after `node /app/main.js`. */
  args: string[];
  /** Numeric uid:gid; scratch images have no /etc/passwd. */
  user: string;
  exposedPorts: number[];
  env: Record<string, string>;
}

/** `localhost/<name>:<tag>`, the reference podman and docker give a locally built image. */
export function imageReference(definition: Pick<ImageDefinition, 'name' | 'tag'>): string {
  return `localhost/${definition.name}:${definition.tag}`;
}

/**
 * An image around a program that a build script makes outside the checkout (a Go
 * binary from the module proxy, a Python venv from PyPI): the script builds into a
 * cache once per machine and prints a build context directory with a `Containerfile`;
 * the image builder turns that directory into `localhost/<name>:<tag>`.
 */
export interface PrebuiltImageDefinition {
  kind: 'prebuilt';
  /** Repository name without registry, e.g. `keyward-otel-collector`. */
  name: string;
  /** The program's own version. */
  tag: string;
  description: string;
  /** Bash script, relative to the repository root; its last line of stdout is the context directory. */
  buildScript: string;
  /** Numeric uid:gid the image runs as. */
  user: string;
  exposedPorts: number[];
}

export type ImageBuildProgress =
  | { type: 'skipped'; image: string; reason: string }
  /** A prebuilt image's build script runs (it may compile or download for minutes when cold). */
  | { type: 'preparing'; image: string; script: string }
  | { type: 'bundling'; image: string }
  | {
      type: 'building';
      image: string;
      base: ImageBase;
      /** A prebuilt image's base: `scratch` or a local image its build script made. */
      from?: string;
    }
  | { type: 'output'; image: string; line: string }
  | { type: 'built'; image: string; milliseconds: number };
