/**
 * Settles like `promise`, or rejects with `Error(message)` after `milliseconds`. The timer is
 * cleared either way, so a pending timeout never keeps the process alive.
 */
export function withTimeout<T>(
  promise: Promise<T>,
  milliseconds: number,
  message = `no answer within ${milliseconds} ms`,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), milliseconds);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
