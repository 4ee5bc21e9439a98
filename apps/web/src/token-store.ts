/** The API token lives in sessionStorage only: gone when the browser session ends, never in a URL. */
export const tokenStorageKey = 'keyward.apiToken';

export function readToken(storage: Storage = sessionStorage): string | undefined {
  return storage.getItem(tokenStorageKey) ?? undefined;
}

export function saveToken(token: string, storage: Storage = sessionStorage): void {
  storage.setItem(tokenStorageKey, token);
}

export function forgetToken(storage: Storage = sessionStorage): void {
  storage.removeItem(tokenStorageKey);
}
