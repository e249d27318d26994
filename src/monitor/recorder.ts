// What `hb capture` does on the hot path: per datagram the detector accepted, its node's id (the
// string the node table holds already, not a new one) and its arrival, stored in chunks of
// preallocated columns; whether a node is captured at all is decided once per node and kept in a
// byte per slot, never by a glob match per datagram, and a node's first row is marked (the writer
// adds the node to the header then, without a lookup per row). Formatting and writing are
// capture.ts's, off the hot path: this is all that runs per datagram while a capture is on.

import type { Datagram } from "../wire/protocol.js";

/** Rows per chunk: a chunk that fills is a reason to format soon. */
export const CHUNK_ROWS = 4096;

class Chunk {
  readonly ids: string[] = Array.from({ length: CHUNK_ROWS }, () => "");
  readonly arrivalMs = new Float64Array(CHUNK_ROWS);
  /** 1 on the first row of a node (in its slot). */
  readonly first = new Uint8Array(CHUNK_ROWS);
  length = 0;
}

/** A slot's verdict, reached for the id it holds: captured, or not. */
const TAKEN = 1;
const SKIPPED = 2;

export interface RecorderDeps {
  /** The node table's slot for the node a datagram names (after the detector accepted it). */
  slotOf: (dg: Datagram) => number;
  /** The id the node table holds for a slot. */
  idAt: (slot: number) => string | undefined;
  /** Whether the capture takes a node; null: every node. */
  match: ((id: string) => boolean) | null;
  /** Most rows held (recorded and not yet taken) before the recorder stops. */
  maxRows: number;
  /** A chunk filled up. */
  onChunk(): void;
  /** The row that arrived at `atMs` found the recorder full: the capture ends there. */
  onFull(atMs: number): void;
}

export class Recorder {
  /** Oldest first: rows are taken from the first, recorded into the last. */
  private readonly chunks: Chunk[] = [new Chunk()];
  private readonly spare: Chunk[] = [new Chunk()];
  private readAt = 0;
  private heldRows = 0;
  private verdict = new Uint8Array(1024);
  /** The id each slot's verdict was reached for: a slot given to another node is looked at again. */
  private verdictFor: (string | undefined)[] = Array.from({ length: 1024 }, () => undefined);
  private full = false;

  constructor(
    /** Datagrams that arrived before this (held back by a reload, taken in since) are not the capture's. */
    private readonly startMs: number,
    private readonly deps: RecorderDeps,
  ) {}

  /** Rows recorded and not taken yet. */
  get held(): number {
    return this.heldRows;
  }

  /** The hot path: a datagram the detector accepted, as of its arrival. */
  accepted(dg: Datagram, arrivalMs: number): void {
    if (this.full || arrivalMs < this.startMs) return;
    const slot = this.deps.slotOf(dg);
    const id = this.deps.idAt(slot);
    if (id === undefined) return;
    let first = 0;
    if (slot >= this.verdict.length || this.verdictFor[slot] !== id) {
      this.judge(slot, id);
      first = 1;
    }
    if (this.verdict[slot] !== TAKEN) return;
    if (this.heldRows >= this.deps.maxRows) {
      this.full = true;
      return this.deps.onFull(arrivalMs);
    }
    let chunk = this.chunks[this.chunks.length - 1]!;
    if (chunk.length === CHUNK_ROWS) {
      chunk = this.spare.pop() ?? new Chunk();
      chunk.length = 0;
      this.chunks.push(chunk);
      this.deps.onChunk();
    }
    chunk.ids[chunk.length] = id;
    chunk.first[chunk.length] = first;
    chunk.arrivalMs[chunk.length++] = arrivalMs;
    this.heldRows++;
  }

  /** A node first seen in its slot: is it captured? */
  private judge(slot: number, id: string): void {
    if (slot >= this.verdict.length) {
      const length = Math.max(slot + 1, this.verdict.length * 2);
      const grown = new Uint8Array(length);
      grown.set(this.verdict);
      this.verdict = grown;
      this.verdictFor = Array.from({ length }, (_, i) => this.verdictFor[i]);
    }
    this.verdictFor[slot] = id;
    this.verdict[slot] = this.deps.match === null || this.deps.match(id) ? TAKEN : SKIPPED;
  }

  /**
   * Hands up to `max` rows to `visit`, oldest first, until it returns false; returns how many it
   * was given. `first`: the node's first row since it got its slot (it may have had another
   * before). A chunk read to its end is kept for reuse.
   */
  take(max: number, visit: (id: string, arrivalMs: number, first: boolean) => boolean): number {
    let given = 0;
    while (given < max && this.heldRows > 0) {
      const chunk = this.chunks[0]!;
      if (this.readAt === chunk.length) {
        this.recycle();
        continue;
      }
      const id = chunk.ids[this.readAt]!;
      const at = chunk.arrivalMs[this.readAt]!;
      const first = chunk.first[this.readAt] === 1;
      this.readAt++;
      this.heldRows--;
      given++;
      if (!visit(id, at, first)) break;
    }
    if (this.heldRows === 0) this.recycle();
    return given;
  }

  /** The first chunk is read: reused, or, when it is the only one, emptied for more rows. */
  private recycle(): void {
    const chunk = this.chunks[0]!;
    if (this.chunks.length > 1) {
      this.chunks.shift();
      // Kept for the next burst, up to what the bound on held rows could need: a capture at a
      // high rate reuses its chunks instead of making new ones every turn.
      if ((this.spare.length + this.chunks.length) * CHUNK_ROWS <= this.deps.maxRows) this.spare.push(chunk);
    } else chunk.length = 0;
    this.readAt = 0;
  }

  /** No more rows are recorded; those held can still be taken. */
  end(): void {
    this.full = true;
  }

  /** No more rows are recorded, and those held are dropped (they came after the trace's end). */
  discard(): void {
    this.full = true;
    this.chunks.splice(1);
    this.chunks[0]!.length = 0;
    this.readAt = 0;
    this.heldRows = 0;
  }
}
