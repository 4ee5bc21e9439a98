import {
  type Api,
  describeError,
  type InstanceSummary,
  type LifecycleAction,
  type Providers,
  type VerifyReport,
} from './api.js';
import { renderCredentialsPanel } from './credentials-panel.js';
import { h, uniqueId } from './dom.js';

export interface InstancesPageOptions {
  api: Api;
  /** The instance opened below the table (`#/instances/<name>`). */
  selected?: string;
  signal: AbortSignal;
}

function sidecarsOf(instance: InstanceSummary): string[] {
  return [...new Set(instance.containers.map((container) => container.providerId))].filter(
    (id) => id !== 'agent',
  );
}

export async function renderInstancesPage(root: HTMLElement, options: InstancesPageOptions): Promise<void> {
  const { api, signal } = options;
  const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const tableHolder = h('div', { class: 'table-holder' });
  const detail = h('div', { class: 'detail' });
  const refresh = h('button', { type: 'button', class: 'secondary' }, 'Refresh');
  root.replaceChildren(
    h('h1', {}, 'Instances'),
    h('div', { class: 'actions' }, refresh),
    status,
    tableHolder,
    detail,
  );
  let providers: Providers | undefined;
  api
    .providers()
    .then((value) => {
      providers = value;
    })
    .catch(() => {});

  const load = async () => {
    try {
      const list = await api.instances();
      tableHolder.replaceChildren(table(list.instances));
      for (const error of list.errors) {
        tableHolder.append(
          h('p', { class: 'warning' }, `Target ${error.target}: ${error.message} (${error.code})`),
        );
      }
      return list.instances;
    } catch (error) {
      status.textContent = `Could not list instances: ${describeError(error)}`;
      return [];
    }
  };

  const act = async (instance: InstanceSummary, action: LifecycleAction | 'delete') => {
    status.textContent = `${action} ${instance.name}…`;
    try {
      if (action === 'delete') await api.remove(instance.name, instance.target);
      else await api.lifecycle(instance.name, action, instance.target);
      status.textContent = `${instance.name}: ${action === 'delete' ? 'deleted' : `${action} done`}.`;
      if (action === 'delete' && options.selected === instance.name) {
        detail.replaceChildren();
        history.replaceState(null, '', '#/instances');
      }
    } catch (error) {
      status.textContent = `${action} ${instance.name} failed: ${describeError(error)}`;
    }
    await load();
  };

  const table = (instances: InstanceSummary[]) => {
    if (instances.length === 0)
      return h('p', {}, 'No instances. ', h('a', { href: '#/deploy' }, 'Deploy one.'));
    return h(
      'table',
      { class: 'instances' },
      h('caption', {}, 'Every instance on every target'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Name', 'State', 'Target', 'Network', 'Sidecars', 'Agent URL', 'Actions'].map((title) =>
            h('th', { scope: 'col' }, title),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        instances.map((instance) => {
          const confirmHolder = h('span', { class: 'confirm' });
          const button = (action: LifecycleAction) => {
            const element = h(
              'button',
              { type: 'button', class: 'secondary' },
              action[0]!.toUpperCase() + action.slice(1),
            );
            element.setAttribute('aria-label', `${action} ${instance.name}`);
            element.addEventListener('click', () => void act(instance, action));
            return element;
          };
          const remove = h(
            'button',
            { type: 'button', class: 'secondary danger', 'aria-label': `Delete ${instance.name}` },
            'Delete',
          );
          remove.addEventListener('click', () => {
            const yes = h('button', { type: 'button', class: 'danger' }, `Yes, delete ${instance.name}`);
            const no = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
            yes.addEventListener('click', () => void act(instance, 'delete'));
            no.addEventListener('click', () => {
              confirmHolder.replaceChildren();
              remove.focus();
            });
            confirmHolder.replaceChildren(
              h(
                'span',
                { role: 'alert' },
                ` Delete ${instance.name}, its containers, networks and volumes? `,
              ),
              yes,
              no,
            );
            no.focus();
          });
          return h(
            'tr',
            { 'data-instance': instance.name },
            h(
              'th',
              { scope: 'row' },
              h('a', { href: `#/instances/${encodeURIComponent(instance.name)}` }, instance.name),
            ),
            h('td', {}, h('span', { class: `badge ${instance.state}` }, instance.state)),
            h('td', {}, instance.target),
            h('td', {}, instance.networkMode),
            h('td', {}, sidecarsOf(instance).join(', ') || '—'),
            h(
              'td',
              {},
              instance.agentUrl
                ? h(
                    'a',
                    { href: instance.agentUrl, rel: 'noreferrer noopener', target: '_blank' },
                    instance.agentUrl,
                  )
                : '—',
            ),
            h(
              'td',
              { class: 'row-actions' },
              instance.state === 'running' ? null : button('start'),
              instance.state === 'stopped' ? null : button('stop'),
              button('restart'),
              remove,
              confirmHolder,
            ),
          );
        }),
      ),
    );
  };

  refresh.addEventListener('click', () => void load());
  const instances = await load();
  const selected = instances.find((instance) => instance.name === options.selected);
  if (selected) {
    if (!providers) providers = await api.providers().catch(() => undefined);
    renderDetail(detail, api, selected, providers, signal);
  } else if (options.selected) {
    detail.replaceChildren(h('p', { class: 'warning' }, `No instance "${options.selected}".`));
  }
}

function renderDetail(
  root: HTMLElement,
  api: Api,
  instance: InstanceSummary,
  providers: Providers | undefined,
  signal: AbortSignal,
): void {
  const logs = h('section', { class: 'logs', 'aria-labelledby': 'logs-title' });
  const verify = h('section', { class: 'verify', 'aria-labelledby': 'verify-title' });
  const credentials = h('section', { class: 'credentials-panel' });
  root.replaceChildren(
    h('h2', {}, instance.name),
    h(
      'ul',
      { class: 'containers' },
      instance.containers.map((container) =>
        h(
          'li',
          {},
          h('strong', {}, container.name),
          ` (${container.providerId}) ${container.image} — `,
          h('span', { class: `badge ${container.running ? 'running' : 'stopped'}` }, container.state),
        ),
      ),
    ),
    credentials,
    verify,
    logs,
  );
  renderLogs(logs, api, instance, signal);
  renderVerify(verify, api, instance);
  const credentialSidecars = (providers?.sidecars ?? []).filter(
    (sidecar) => sidecar.roles.includes('credentials') && sidecarsOf(instance).includes(sidecar.id),
  );
  for (const sidecar of credentialSidecars) {
    const holder = h('div', {});
    credentials.append(holder);
    void renderCredentialsPanel(holder, api, instance, sidecar);
  }
}

function renderLogs(root: HTMLElement, api: Api, instance: InstanceSummary, signal: AbortSignal): void {
  const selectId = uniqueId('log-container');
  const select = h(
    'select',
    { id: selectId },
    instance.containers.map((container) =>
      h('option', { value: container.name }, `${container.name} (${container.providerId})`),
    ),
  );
  const output = h('pre', {
    class: 'log-output',
    tabindex: '0',
    'aria-label': 'Log lines',
    'aria-live': 'off',
  });
  const follow = h('button', { type: 'button', class: 'secondary' }, 'Follow');
  const state = h('span', { class: 'status', role: 'status' });
  let running: AbortController | undefined;
  const stop = () => {
    running?.abort();
    running = undefined;
    follow.textContent = 'Follow';
  };
  signal.addEventListener('abort', stop);
  follow.addEventListener('click', () => {
    if (running) {
      stop();
      state.textContent = 'Stopped following.';
      return;
    }
    const controller = new AbortController();
    running = controller;
    follow.textContent = 'Stop following';
    output.textContent = '';
    state.textContent = `Following ${select.value}…`;
    void (async () => {
      try {
        for await (const line of api.logs(instance.name, {
          container: select.value,
          tail: 200,
          signal: controller.signal,
        })) {
          const lines = `${output.textContent ?? ''}${line.line}\n`.split('\n');
          output.textContent = lines.slice(-500).join('\n');
          output.scrollTop = output.scrollHeight;
        }
        if (running === controller) state.textContent = 'The log stream ended.';
      } catch (error) {
        if (!controller.signal.aborted) state.textContent = `Logs failed: ${describeError(error)}`;
      } finally {
        if (running === controller) stop();
      }
    })();
  });
  root.replaceChildren(
    h('h3', { id: 'logs-title' }, 'Logs'),
    h('div', { class: 'inline' }, h('label', { for: selectId }, 'Container'), select, follow, state),
    output,
  );
}

function renderVerify(root: HTMLElement, api: Api, instance: InstanceSummary): void {
  const run = h('button', { type: 'button', class: 'secondary' }, 'Run verify');
  const result = h('div', { class: 'verify-result', 'aria-live': 'polite' });
  run.addEventListener('click', () => {
    run.disabled = true;
    result.replaceChildren(h('p', { role: 'status' }, 'Running the checks inside the instance…'));
    void api
      .verify(instance.name, instance.target)
      .then((report) => result.replaceChildren(...verifyReport(report)))
      .catch((error) =>
        result.replaceChildren(h('p', { class: 'failure', role: 'alert' }, describeError(error))),
      )
      .finally(() => {
        run.disabled = false;
      });
  });
  root.replaceChildren(
    h('h3', { id: 'verify-title' }, 'Verify'),
    h('p', { class: 'hint' }, 'Runs every sidecar’s and the target’s checks from inside the instance.'),
    run,
    result,
  );
}

export function verifyReport(report: VerifyReport): HTMLElement[] {
  return [
    h(
      'p',
      { class: report.passed ? 'success' : 'failure', role: 'status' },
      report.passed ? 'Every check passed.' : 'Some checks failed.',
    ),
    h(
      'table',
      { class: 'checks' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Check', 'Owner', 'Result', 'Evidence'].map((title) => h('th', { scope: 'col' }, title)),
        ),
      ),
      h(
        'tbody',
        {},
        report.checks.map((check) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, check.name, h('br'), h('small', { class: 'hint' }, check.description)),
            h('td', {}, check.providerId),
            h(
              'td',
              {},
              h(
                'span',
                { class: `badge ${check.passed ? 'succeeded' : 'failed'}` },
                check.passed ? 'passed' : 'failed',
              ),
            ),
            h('td', {}, h('code', { class: 'evidence' }, check.evidence)),
          ),
        ),
      ),
    ),
  ];
}
