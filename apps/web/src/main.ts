import { Api, describeError } from './api.js';
import { renderDeployPage } from './deploy-page.js';
import { h, uniqueId } from './dom.js';
import { renderInstancesPage } from './instances-page.js';
import { forgetToken, readToken, saveToken } from './token-store.js';

const app = document.getElementById('app')!;
const origin = window.location.origin;
let pageAbort = new AbortController();

/** Every response is checked: a 401 means the token is wrong or was rotated, so ask again. */
function transport(): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (response.status === 401) {
      forgetToken();
      queueMicrotask(() =>
        showTokenGate('The API refused the saved token (it may have been rotated). Paste the current one.'),
      );
    }
    return response;
  };
}

function showTokenGate(notice?: string): void {
  pageAbort.abort();
  const id = uniqueId('token');
  const input = h('input', {
    id,
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': `${id}-hint`,
  });
  const message = h('p', { class: 'form-error', role: 'alert' }, notice ?? '');
  const form = h(
    'form',
    { class: 'token-gate', 'aria-label': 'Sign in' },
    h('h1', {}, 'keyward'),
    h(
      'div',
      { class: 'field' },
      h('label', { for: id }, 'API token'),
      input,
      h(
        'small',
        { class: 'hint', id: `${id}-hint` },
        'In the data directory (~/.keyward/api-token). Kept for this browser session only.',
      ),
    ),
    message,
    h('button', { type: 'submit', class: 'primary' }, 'Continue'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    input.value = '';
    if (!token) {
      message.textContent = 'Paste the API token first.';
      return;
    }
    const api = new Api(origin, token, fetch.bind(globalThis));
    api
      .checkToken()
      .then((accepted) => {
        if (!accepted) {
          message.textContent =
            'Wrong token: the API refused it (401). Use the one in ~/.keyward/api-token, or rotate it with "keyward token rotate".';
          input.focus();
          return;
        }
        saveToken(token);
        route();
      })
      .catch((error) => {
        message.textContent = `Could not reach the API: ${describeError(error)}`;
      });
  });
  document.body.classList.add('signed-out');
  app.replaceChildren(form);
  input.focus();
}

function navigation(current: string): HTMLElement {
  const link = (href: string, label: string, active: boolean) =>
    h('a', { href, 'aria-current': active ? 'page' : undefined }, label);
  const signOut = h('button', { type: 'button', class: 'link' }, 'Forget token');
  signOut.addEventListener('click', () => {
    forgetToken();
    showTokenGate('Token forgotten.');
  });
  return h(
    'nav',
    { 'aria-label': 'Main' },
    h('span', { class: 'brand' }, 'keyward'),
    link('#/deploy', 'Deploy', current === 'deploy'),
    link('#/instances', 'Instances', current === 'instances'),
    signOut,
  );
}

function route(): void {
  const token = readToken();
  if (!token) {
    showTokenGate();
    return;
  }
  document.body.classList.remove('signed-out');
  pageAbort.abort();
  pageAbort = new AbortController();
  const api = new Api(origin, token, transport());
  const [, page = 'instances', selected] = window.location.hash.replace(/^#/, '').split('/');
  const main = h('main', { id: 'main', tabindex: '-1' });
  app.replaceChildren(h('a', { href: '#main', class: 'skip' }, 'Skip to content'), navigation(page), main);
  if (page === 'deploy') void renderDeployPage(main, { api });
  else
    void renderInstancesPage(main, {
      api,
      signal: pageAbort.signal,
      ...(selected ? { selected: decodeURIComponent(selected) } : {}),
    });
}

window.addEventListener('hashchange', route);
route();
