import {
  type Api,
  describeError,
  type InstanceSpecInput,
  type Providers,
  problemsOf,
  type SidecarDescription,
  type Target,
} from './api.js';
import { h, replaceChildren, uniqueId } from './dom.js';
import { followJob, JobProgressView } from './job-progress.js';
import { buildConfigForm, buildField, type FormField, type JsonSchema, showProblems } from './schema-form.js';

/** What `open` gives up, in one plain sentence (shown next to the choice). */
export const openModeSentence =
  'Open: the agent can reach any host directly, so a credential could be used without the proxy and the agent can send data anywhere; only the proxy-only mode guarantees that every request goes through the sidecars.';
export const proxyOnlySentence =
  'Proxy-only (recommended): the agent has no route to the internet; it reaches the outside only through the sidecars, which inject credentials it never sees.';

const agentSchema: JsonSchema = {
  type: 'object',
  required: ['image', 'port'],
  properties: {
    image: {
      type: 'string',
      title: 'Agent image',
      description: 'For example ghcr.io/openclaw/openclaw:latest',
    },
    port: { type: 'integer', title: 'Agent port', description: 'The port the agent listens on' },
    skillsDirectory: {
      type: 'string',
      title: 'Skills directory',
      description:
        'Absolute path where the agent reads SKILL.md files (sidecars that teach the agent need it)',
    },
    env: {
      type: 'object',
      title: 'Environment (not secret)',
      description: 'NAME=value, one per line. Credentials belong in the Credential Proxy below, never here.',
      additionalProperties: { type: 'string' },
    },
  },
};

export interface DeployPageOptions {
  api: Api;
  onDeployed?: (name: string) => void;
}

/** Sidecars whose page manages credentials (the Credential Proxy). */
export function isCredentialSidecar(sidecar: SidecarDescription): boolean {
  return sidecar.roles.includes('credentials');
}

function targetStatus(target: Target): HTMLElement {
  const { detection } = target;
  return h(
    'li',
    { class: `target ${detection.available ? 'available' : 'unavailable'}` },
    h('strong', {}, target.displayName ?? target.id),
    ' ',
    h(
      'span',
      { class: `badge ${detection.available ? 'succeeded' : 'failed'}` },
      detection.available ? 'available' : 'unavailable',
    ),
    detection.available
      ? ` ${detection.runtime ? `${detection.runtime.name}${detection.runtime.version ? ` ${detection.runtime.version}` : ''}` : ''}${detection.runtime?.endpoint ? ` at ${detection.runtime.endpoint}` : ''}`
      : h(
          'span',
          { class: 'why' },
          ` ${detection.reason ?? 'not reachable'}.`,
          detection.hint ? h('span', { class: 'hint' }, ` To fix: ${detection.hint}`) : null,
        ),
  );
}

interface SidecarSection {
  sidecar: SidecarDescription;
  enabled: HTMLInputElement;
  form: FormField;
  element: HTMLElement;
}

function sidecarSection(sidecar: SidecarDescription, networkMode: () => string): SidecarSection {
  const credential = isCredentialSidecar(sidecar);
  const id = uniqueId(`sidecar-${sidecar.id}`);
  const title = credential
    ? `Credential Proxy (${sidecar.displayName ?? sidecar.id})`
    : (sidecar.displayName ?? sidecar.id);
  const form = buildConfigForm(sidecar.schemas.config as JsonSchema, sidecar.id, title);
  const enabled = h('input', { type: 'checkbox', id, name: `sidecar-${sidecar.id}`, checked: credential });
  const body = h('div', { class: 'sidecar-body' }, form.element);
  const errorSlot = h('p', {
    class: 'field-error',
    role: 'alert',
    'data-error-for': `sidecars.${sidecar.id}`,
  });
  const sync = () => {
    body.hidden = !enabled.checked;
  };
  enabled.addEventListener('change', sync);
  sync();
  const requires = sidecar.requires
    .filter((requirement) => !requirement.optional)
    .map((requirement) => requirement.provider);
  return {
    sidecar,
    enabled,
    form,
    element: h(
      'section',
      { class: `sidecar${credential ? ' credential-proxy' : ''}`, 'aria-labelledby': `${id}-title` },
      h('h3', { id: `${id}-title` }, title),
      credential
        ? h(
            'p',
            { class: 'info' },
            'Each credential is sealed inside the proxy: the agent gets a placeholder it can use for the allowed hosts only, and can never read the value. Secrets are sent once and never shown again.',
          )
        : null,
      h(
        'div',
        { class: 'field field-checkbox' },
        enabled,
        h('label', { for: id }, `Add ${sidecar.displayName ?? sidecar.id}`),
      ),
      requires.length > 0 ? h('p', { class: 'hint' }, `Needs: ${requires.join(', ')}.`) : null,
      sidecar.networkModes.length < 2
        ? h(
            'p',
            { class: 'hint' },
            `Network modes: ${sidecar.networkModes.join(', ')} (now ${networkMode()}).`,
          )
        : null,
      errorSlot,
      body,
    ),
  };
}

/**
 * Reads the form into an instance spec. Exported for the component tests: what the page sends
 * is exactly this.
 */
export function readSpec(parts: {
  name: FormField;
  target: string;
  targetOptions: FormField | undefined;
  agent: FormField;
  networkMode: string;
  sidecars: SidecarSection[];
}): InstanceSpecInput {
  const sidecars: Record<string, unknown> = {};
  for (const section of parts.sidecars) {
    if (section.enabled.checked)
      sidecars[section.sidecar.id] = section.form.read(`sidecars.${section.sidecar.id}`) ?? {};
  }
  const agent = (parts.agent.read('agent') as Record<string, unknown> | undefined) ?? {};
  return {
    name: parts.name.read('name') as string,
    target: parts.target,
    agent: agent as InstanceSpecInput['agent'],
    network: { egress: parts.networkMode as 'proxy-only' | 'open' },
    targetOptions: (parts.targetOptions?.read('targetOptions') as Record<string, unknown> | undefined) ?? {},
    sidecars,
  };
}

export async function renderDeployPage(root: HTMLElement, options: DeployPageOptions): Promise<void> {
  const { api } = options;
  root.replaceChildren(h('p', { role: 'status' }, 'Loading targets and sidecars…'));
  let providers: Providers;
  let targets: Target[];
  try {
    [providers, targets] = await Promise.all([api.providers(), api.targets()]);
  } catch (error) {
    root.replaceChildren(
      h('p', { class: 'failure', role: 'alert' }, `Could not load: ${describeError(error)}`),
    );
    return;
  }

  const targetSelectId = uniqueId('target');
  const available = targets.filter((target) => target.detection.available);
  const targetSelect = h(
    'select',
    { id: targetSelectId, name: 'target' },
    targets.map((target) =>
      h(
        'option',
        { value: target.id, selected: target === (available[0] ?? targets[0]) },
        `${target.displayName ?? target.id}${target.detection.available ? '' : ' (unavailable)'}`,
      ),
    ),
  );
  const targetOptionsHolder = h('div', { class: 'target-options' });
  let targetOptions: FormField | undefined;
  const syncTarget = () => {
    const schema = providers.targets.find((target) => target.id === targetSelect.value)?.schemas.options as
      | JsonSchema
      | undefined;
    targetOptions =
      schema?.properties && Object.keys(schema.properties).length > 0
        ? buildConfigForm(schema, 'targetOptions', 'Target options')
        : undefined;
    targetOptionsHolder.replaceChildren(
      ...(targetOptions ? [h('h3', {}, 'Target options'), targetOptions.element] : []),
    );
  };
  targetSelect.addEventListener('change', syncTarget);
  syncTarget();

  const name = buildField(
    {
      type: 'string',
      title: 'Instance name',
      description: 'Lower-case letters, digits and "-" (a DNS label), for example my-agent',
    },
    { name: 'name', required: true },
  );
  const agent = buildConfigForm(agentSchema, 'agent', 'Agent');

  const modeName = uniqueId('network-mode');
  const modeRadio = (value: string, label: string, sentence: string, checked: boolean) => {
    const id = uniqueId(modeName);
    return h(
      'div',
      { class: 'field field-radio' },
      h('input', { type: 'radio', id, name: modeName, value, checked, 'aria-describedby': `${id}-hint` }),
      h('label', { for: id }, label),
      h('small', { class: 'hint', id: `${id}-hint` }, sentence),
    );
  };
  const networkFieldset = h(
    'fieldset',
    { class: 'network' },
    h('legend', {}, 'Network mode'),
    modeRadio('proxy-only', 'Proxy-only', proxyOnlySentence, true),
    modeRadio('open', 'Open', openModeSentence, false),
  );
  const networkMode = () =>
    networkFieldset.querySelector<HTMLInputElement>('input[type=radio]:checked')?.value ?? 'proxy-only';

  const sections = providers.sidecars.map((sidecar) => sidecarSection(sidecar, networkMode));
  const loadErrors = providers.loadErrors.length
    ? h(
        'div',
        { class: 'warning', role: 'note' },
        h('strong', {}, 'Plugins that failed to load:'),
        h(
          'ul',
          {},
          providers.loadErrors.map((item) => h('li', {}, `${item.source}: ${item.message} (${item.code})`)),
        ),
      )
    : null;

  const formError = h('div', { class: 'form-error', role: 'alert' });
  const progressHolder = h('div', { class: 'progress' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Deploy');
  const form = h(
    'form',
    { class: 'deploy', novalidate: true, autocomplete: 'off', 'aria-label': 'Deploy an instance' },
    h(
      'section',
      { 'aria-labelledby': 'targets-title' },
      h('h2', { id: 'targets-title' }, 'Target'),
      h('ul', { class: 'targets' }, targets.map(targetStatus)),
      h('div', { class: 'field' }, h('label', { for: targetSelectId }, 'Deploy to'), targetSelect),
      targetOptionsHolder,
    ),
    h(
      'section',
      { 'aria-labelledby': 'agent-title' },
      h('h2', { id: 'agent-title' }, 'Agent'),
      name.element,
      agent.element,
    ),
    networkFieldset,
    h(
      'section',
      { 'aria-labelledby': 'sidecars-title' },
      h('h2', { id: 'sidecars-title' }, 'Sidecars'),
      loadErrors,
      sections.map((section) => section.element),
    ),
    formError,
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void deploy();
  });

  const deploy = async () => {
    formError.replaceChildren();
    const spec = readSpec({
      name,
      target: targetSelect.value,
      targetOptions,
      agent,
      networkMode: networkMode(),
      sidecars: sections,
    });
    submit.disabled = true;
    try {
      const accepted = await api.deploy(spec);
      // The secrets went to the server; none stays in the page.
      for (const section of sections) section.form.clearSecrets();
      showProblems(form, []);
      for (const warning of accepted.warnings)
        formError.append(h('p', { class: 'warning' }, warning.message));
      const view = new JobProgressView(`Deploying ${accepted.instance} to ${accepted.target}`);
      progressHolder.replaceChildren(view.element);
      view.element.scrollIntoView?.({ block: 'nearest' });
      const outcome = await followJob(api, accepted.jobId, view);
      view.finish(outcome, `${accepted.instance} is deployed and running.`);
      if (outcome.succeeded) {
        progressHolder.append(
          h(
            'p',
            {},
            h(
              'a',
              { href: `#/instances/${encodeURIComponent(accepted.instance)}` },
              `Open ${accepted.instance}`,
            ),
          ),
        );
        options.onDeployed?.(accepted.instance);
      }
    } catch (error) {
      const unplaced = showProblems(form, problemsOf(error));
      replaceChildren(
        formError,
        h(
          'p',
          {},
          problemsOf(error).length > 0
            ? 'The API refused the spec; see the messages next to the fields.'
            : describeError(error),
        ),
        unplaced.length > 0
          ? h(
              'ul',
              {},
              unplaced.map((problem) => h('li', {}, problem)),
            )
          : null,
      );
      form.querySelector<HTMLElement>('[aria-invalid=true]')?.focus();
    } finally {
      submit.disabled = false;
    }
  };

  root.replaceChildren(h('h1', {}, 'Deploy an agent'), form, progressHolder);
}
