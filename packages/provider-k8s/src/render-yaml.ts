import type { KubernetesObject } from '@kubernetes/client-node';
import { stringify } from 'yaml';

/** Multi-document YAML; objects keep the fixed key order the builder gives them. */
export function objectsToYaml(objects: readonly KubernetesObject[], header?: string): string {
  const documents = objects.map((object) =>
    stringify(object, { lineWidth: 0, indent: 2, aliasDuplicateObjects: false }),
  );
  const prefix = header
    ? `${header
        .split('\n')
        .map((line) => `# ${line}`.trimEnd())
        .join('\n')}\n`
    : '';
  return `${prefix}${documents.map((document) => `---\n${document}`).join('')}`;
}
