/**
 * A fixed set of lower-case header names, looked up by length first: most names of a message
 * have no member of their length, and the others are compared as strings. A Set would hash
 * every name, and a name sliced from a head is a new string whose hash is computed each time.
 */
export class HeaderNameSet {
  private readonly byLength: (readonly string[] | undefined)[] = [];

  constructor(names: Iterable<string>) {
    for (const name of names) {
      const lower = name.toLowerCase();
      const members = (this.byLength[lower.length] ?? []) as string[];
      if (!members.includes(lower)) members.push(lower);
      this.byLength[lower.length] = members;
    }
  }

  /** `name` must be lower case. */
  has(name: string): boolean {
    const members = this.byLength[name.length];
    if (members === undefined) return false;
    for (let index = 0; index < members.length; index++) if (members[index] === name) return true;
    return false;
  }

  /** Any case; lower-cases `name` only when a member has its length. */
  hasIgnoringCase(name: string): boolean {
    const members = this.byLength[name.length];
    return members !== undefined && this.has(name.toLowerCase());
  }
}
