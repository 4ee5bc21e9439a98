/** A bounded least-recently-used map (Map keeps insertion order; a hit re-inserts). */
export class LruCache<K, V> {
  private readonly entries = new Map<K, V>();
  readonly maxEntries: number;

  constructor(maxEntries: number) {
    this.maxEntries = Math.max(0, Math.floor(maxEntries));
  }

  get size(): number {
    return this.entries.size;
  }

  /** The most recently used key: already last in order, so a hit on it needs no re-insert. */
  private newest: K | undefined;

  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value === undefined) return undefined;
    if (key !== this.newest) {
      this.entries.delete(key);
      this.entries.set(key, value);
      this.newest = key;
    }
    return value;
  }

  set(key: K, value: V): void {
    if (this.maxEntries === 0) return;
    this.entries.delete(key);
    this.entries.set(key, value);
    this.newest = key;
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
    this.newest = undefined;
  }
}
