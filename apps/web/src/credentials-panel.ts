import { type Api, describeError, KeywardApiError, problemsOf, type SidecarDescription } from './api.js';
import { append, h, replaceChildren, uniqueId } from './dom.js';
import { followJob, JobProgressView } from './job-progress.js';
import { buildField, type FormField, type JsonSchema, showProblems } from './schema-form.js';

interface CredentialView {
  name: string;
  allowedHosts: string[];
  headerDst?: string;
  headerFmt?: string;
}

interface ExistingRow {
  credential: CredentialView;
  removed: boolean;
  replacement: { secret: HTMLInputElement; hosts: HTMLInputElement } | undefined;
  element: HTMLElement;
}

/** Explains a 409 from a change route: another rotation holds the instance. */
export function conflictMessage(error: KeywardApiError): string {
  const jobId = error.details?.['jobId'];
  return `Another change is already running on this instance${typeof jobId === 'string' ? ` (job ${jobId})` : ''}: one rotation at a time keeps the old credentials working until the new ones are in place. Wait for it to finish, reload, and apply again.`;
}

/**
 * The credentials of one instance, by name and hosts (never values): add, replace, remove, then
 * apply everything as one rotation (the full new list; `secret: ""` keeps a credential).
 */
export async function renderCredentialsPanel(
  root: HTMLElement,
  api: Api,
  instance: { name: string; target: string },
  sidecar: SidecarDescription,
): Promise<void> {
  const heading = h('h3', {}, `Credentials (${sidecar.displayName ?? sidecar.id})`);
  root.replaceChildren(heading, h('p', { role: 'status' }, 'Loading credentials…'));
  let view: { credentials?: CredentialView[]; rotationJobId?: string };
  try {
    view = (await api.sidecarView(instance.name, sidecar.id, instance.target)) as typeof view;
  } catch (error) {
    root.replaceChildren(heading, h('p', { class: 'failure', role: 'alert' }, describeError(error)));
    return;
  }
  const existing: ExistingRow[] = (view.credentials ?? []).map((credential) => {
    const row: ExistingRow = {
      credential,
      removed: false,
      replacement: undefined,
      element: h('li', { class: 'credential' }),
    };
    const replaceHolder = h('div', { class: 'replace' });
    const replaceButton = h('button', { type: 'button', class: 'secondary' }, 'Replace secret');
    const removeButton = h('button', { type: 'button', class: 'secondary danger' }, 'Remove');
    const state = h('span', { class: 'row-state', 'aria-live': 'polite' });
    replaceButton.addEventListener('click', () => {
      if (row.replacement) {
        row.replacement = undefined;
        replaceHolder.replaceChildren();
        replaceButton.textContent = 'Replace secret';
        return;
      }
      const secretId = uniqueId('replace-secret');
      const hostsId = uniqueId('replace-hosts');
      const secret = h('input', {
        id: secretId,
        type: 'password',
        autocomplete: 'off',
        spellcheck: 'false',
        'data-secret': 'true',
      });
      const hosts = h('input', {
        id: hostsId,
        type: 'text',
        autocomplete: 'off',
        spellcheck: 'false',
        value: credential.allowedHosts.join(', '),
      });
      row.replacement = { secret, hosts };
      replaceHolder.replaceChildren(
        h(
          'div',
          { class: 'field' },
          h('label', { for: secretId }, `New secret for ${credential.name}`),
          secret,
        ),
        h('div', { class: 'field' }, h('label', { for: hostsId }, 'Allowed hosts (comma-separated)'), hosts),
      );
      replaceButton.textContent = 'Keep the current secret';
      secret.focus();
    });
    removeButton.addEventListener('click', () => {
      row.removed = !row.removed;
      row.element.classList.toggle('removed', row.removed);
      removeButton.textContent = row.removed ? 'Keep' : 'Remove';
      state.textContent = row.removed ? ' — will be removed' : '';
    });
    append(row.element, [
      h('strong', { class: 'credential-name' }, credential.name),
      ' ',
      h('span', { class: 'hosts' }, credential.allowedHosts.join(', ') || '(no hosts)'),
      credential.headerDst
        ? h('span', { class: 'hint' }, ` ${credential.headerDst}: ${credential.headerFmt ?? 'Bearer %s'}`)
        : null,
      state,
      h('span', { class: 'row-actions' }, replaceButton, removeButton),
      replaceHolder,
    ]);
    return row;
  });

  const changeSchema = sidecar.schemas.change as JsonSchema | undefined;
  const listSchema = changeSchema?.properties?.['credentials'];
  const newRows: FormField | undefined = listSchema
    ? buildField(
        { ...listSchema, description: 'New credentials: the secret is sent once and never shown again.' },
        {
          name: 'credentials',
          label: 'New credentials',
          required: false,
        },
      )
    : undefined;
  const message = h('div', { class: 'form-error', role: 'alert' });
  const progressHolder = h('div', { class: 'progress' });
  const apply = h('button', { type: 'submit', class: 'primary' }, 'Apply changes (one rotation)');
  const form = h(
    'form',
    {
      class: 'credentials',
      novalidate: true,
      autocomplete: 'off',
      'aria-label': `Credentials of ${instance.name}`,
    },
    existing.length > 0
      ? h(
          'ul',
          { class: 'credential-list' },
          existing.map((row) => row.element),
        )
      : h('p', {}, 'No credentials yet.'),
    view.rotationJobId
      ? h('p', { class: 'warning' }, `A rotation is running (job ${view.rotationJobId}).`)
      : null,
    newRows?.element,
    message,
    h('div', { class: 'actions' }, apply),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submit();
  });

  const submit = async () => {
    message.replaceChildren();
    const added = (newRows?.read('credentials') as Record<string, unknown>[] | undefined) ?? [];
    const kept = existing
      .filter((row) => !row.removed)
      .map((row) => {
        if (!row.replacement || row.replacement.secret.value === '')
          return { name: row.credential.name, secret: '' };
        return {
          name: row.credential.name,
          secret: row.replacement.secret.value,
          allowedHosts: row.replacement.hosts.value
            .split(',')
            .map((host) => host.trim())
            .filter(Boolean),
          ...(row.credential.headerDst ? { headerDst: row.credential.headerDst } : {}),
          ...(row.credential.headerFmt ? { headerFmt: row.credential.headerFmt } : {}),
        };
      });
    const credentials = [...added, ...kept];
    if (credentials.length === 0 && !window.confirm(`Remove every credential of ${instance.name}?`)) return;
    apply.disabled = true;
    try {
      const accepted = await api.changeSidecar(instance.name, sidecar.id, { credentials }, instance.target);
      // Sent: clear every secret from the page before anything else happens.
      newRows?.clearSecrets();
      for (const row of existing) if (row.replacement) row.replacement.secret.value = '';
      showProblems(form, []);
      const progress = new JobProgressView(`Rotating the credentials of ${instance.name}`);
      progressHolder.replaceChildren(progress.element);
      const outcome = await followJob(api, accepted.jobId, progress);
      progress.finish(
        outcome,
        `Applied: ${credentials.length} credential${credentials.length === 1 ? '' : 's'} in place.`,
        ' The old credentials still work.',
      );
      if (outcome.succeeded) {
        const result = h('div', { class: 'after' });
        progressHolder.append(result);
        await renderCredentialsPanel(root, api, instance, sidecar);
        root.append(progressHolder);
      }
    } catch (error) {
      if (error instanceof KeywardApiError && error.status === 409) {
        message.replaceChildren(h('p', {}, conflictMessage(error)));
      } else {
        const problems = problemsOf(error).map((problem) =>
          problem.replace(new RegExp(`^sidecars\\.${sidecar.id}\\.`), ''),
        );
        const unplaced = showProblems(form, problems);
        replaceChildren(
          message,
          h(
            'p',
            {},
            problems.length > 0
              ? 'The API refused the change; see the messages next to the fields.'
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
      }
    } finally {
      apply.disabled = false;
    }
  };

  root.replaceChildren(heading, form, progressHolder);
}
