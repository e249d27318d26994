// The states a node (or another monitor) can be in, as operators read them: the one list that
// the state type, the status filters, the counts and the metrics are all derived from. The order
// is the detector's state codes' (node-table.ts), and the order in which counts are shown.

export const STATES = ["new", "up", "late", "down", "left", "paused"] as const;
export type StateName = (typeof STATES)[number];

/** How many nodes are in each state. */
export type Counts = Record<StateName, number>;

export const zeroCounts = (): Counts => Object.fromEntries(STATES.map((s) => [s, 0])) as Counts;

export function isState(text: string): text is StateName {
  return (STATES as readonly string[]).includes(text);
}
