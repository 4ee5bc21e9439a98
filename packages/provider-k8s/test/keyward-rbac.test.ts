import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { keywardRole, keywardRoleBinding } from '../src/index.js';
import { objectsToYaml } from '../src/render-yaml.js';

const deployDirectory = new URL('../deploy/base/', import.meta.url);

describe('in-cluster manifests', () => {
  it('ship the Role the code defines (deploy/base/role.yaml is generated from keywardRole)', async () => {
    const expected = objectsToYaml(
      [keywardRole('keyward-agents')],
      'Generated from keywardRole() in src/keyward-rbac.ts; a unit test keeps them equal.',
    );
    await expect(expected).toMatchFileSnapshot('../deploy/base/role.yaml');
  });

  it('bind the Role to the keyward ServiceAccount only', () => {
    const shipped = parseAllDocuments(
      readFileSync(new URL('role-binding.yaml', deployDirectory), 'utf8'),
    ).map((document) => document.toJS());
    expect(shipped).toEqual([
      keywardRoleBinding('keyward-agents', { name: 'keyward', namespace: 'keyward-system' }),
    ]);
  });

  it('grant no cluster-wide rights, no wildcard, and nothing on the agents', () => {
    const role = keywardRole('keyward-agents');
    const text = JSON.stringify(role.rules);
    expect(text).not.toContain('*');
    expect(text).not.toMatch(/clusterrole|escalate|bind|impersonate|nodes|rolebindings/);
    const kustomization = readFileSync(new URL('kustomization.yaml', deployDirectory), 'utf8');
    expect(kustomization).not.toMatch(/ClusterRole/);
  });

  it('run keyward itself with the restricted profile', () => {
    const [deployment] = parseAllDocuments(
      readFileSync(new URL('deployment.yaml', deployDirectory), 'utf8'),
    ).map((document) => document.toJS());
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.containers[0].securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      readOnlyRootFilesystem: true,
    });
  });
});
