// What the policy keeps that the monitors of a cluster share: maintenance windows and the last
// state paged per node, each a map that merges by a rule of its own (`wins`). Without a cluster it
// is a plain local map (LocalMap); with one, the peer channel's replica (monitor/replica.ts, made
// in daemon/assemble.ts), which tells of the records it took from the other monitors.

export interface SharedMap<V> {
  get(key: string): V | undefined;
  entries(): IterableIterator<[string, V]>;
  readonly size: number;
  /** A local change, kept if it wins over what is there (and, in a cluster, sent to the peers). */
  set(key: string, value: V): void;
  /** Told of every change taken from another monitor: key, new value, old value. */
  onChange: ((key: string, value: V, old: V | undefined) => void) | undefined;
  /** Drops the records `keep` refuses now. */
  prune(wallMs: number): void;
}

export interface MergeRule<V> {
  /** Whether `a` replaces `b` when both are known for one key: the same order on every monitor. */
  wins(a: V, b: V): boolean;
  keep?(v: V, wallMs: number): boolean;
}

/** A SharedMap with no one to share with. */
export class LocalMap<V> implements SharedMap<V> {
  private readonly map = new Map<string, V>();
  onChange: ((key: string, value: V, old: V | undefined) => void) | undefined;

  constructor(private readonly rule: MergeRule<V>) {}

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }

  get size(): number {
    return this.map.size;
  }

  set(key: string, value: V): void {
    const old = this.map.get(key);
    if (old === undefined || this.rule.wins(value, old)) this.map.set(key, value);
  }

  prune(wallMs: number): void {
    const rule = this.rule;
    if (rule.keep === undefined) return;
    for (const [key, value] of this.map) if (!rule.keep(value, wallMs)) this.map.delete(key);
  }
}
