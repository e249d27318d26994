// The operator's maintenance commands as the monitor serves them (`hb maint add|list|extend|end`):
// each request checked (selectors, a comment, the time bounds, `--all` for a window over every
// node), turned into a window, kept in the state directory before it is answered, and shared with
// the other monitors of a cluster. A refusal says what to change; nothing here throws at the
// client.

import { randomBytes } from "node:crypto";
import type { MaintRefusal, RecurringWindowView } from "../actions.js";
import type { Clock } from "../clock.js";
import type { Config } from "../config/types.js";
import { matchesAny, parseSelector, type Selector } from "../selectors.js";
import {
  MAX_AUTHOR_CHARS,
  MAX_COMMENT_CHARS,
  MAX_LEAD_MS,
  MAX_SELECTORS,
  MAX_WINDOWS,
  windowState,
  type MaintWindow,
  type WindowState,
  type Windows,
} from "./windows.js";

/** A maintenance command's answer: the window it made or changed, or why it was refused. */
export type MaintReply =
  | { readonly ok: true; readonly window: MaintWindow & { state: WindowState } }
  | { readonly ok: false; readonly status: MaintRefusal; readonly error: string };

export interface MaintList {
  readonly now: number;
  readonly windows: readonly (MaintWindow & { state: WindowState })[];
  readonly recurring: readonly RecurringWindowView[];
}

export interface MaintDeps {
  clock: Clock;
  config: () => Config;
  windows: Windows;
  /** This monitor's name, recorded as the window's `by`. */
  monitor: string;
  /** Visits every node the monitor knows (id and labels), to tell a window over all of them. */
  forEachNode(visit: (id: string, labels: Readonly<Record<string, string>> | null) => void): void;
  /** Whether a window's record fits the peer channel (a cluster's datagram size); null: no limit. */
  fits?: (w: MaintWindow) => boolean;
  /** Saved to the state directory: the answer waits for it. */
  save(): Promise<void>;
}

function refuse(status: MaintRefusal, error: string): MaintReply {
  return { ok: false, status, error };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const isTime = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v > 0;

/** "m-" and eight base-32 characters: unique across the monitors of a site without asking them. */
function newId(): string {
  const alphabet = "abcdefghijkmnpqrstuvwxyz23456789";
  return `m-${[...randomBytes(8)].map((b) => alphabet[b % alphabet.length]).join("")}`;
}

export class Maint {
  constructor(private readonly deps: MaintDeps) {}

  private reply(w: MaintWindow): MaintReply {
    return { ok: true, window: { ...w, state: windowState(w, this.deps.clock.wallMs()) } };
  }

  /** `hb maint add`: body {match, comment, author, startsAt?, endsAt, all?}. */
  async add(body: unknown): Promise<MaintReply> {
    if (!isRecord(body)) return refuse(400, "the request is not a JSON object");
    const { match, comment, author, startsAt, endsAt, all } = body;
    if (!Array.isArray(match) || match.length === 0) return refuse(400, "give at least one selector");
    if (match.length > MAX_SELECTORS) return refuse(400, `at most ${MAX_SELECTORS} selectors`);
    const selectors: Selector[] = [];
    for (const text of match) {
      const selector = typeof text === "string" ? parseSelector(text) : "a selector is a string";
      if (typeof selector === "string") return refuse(400, selector);
      selectors.push(selector);
    }
    if (typeof comment !== "string" || comment.trim() === "")
      return refuse(400, "a comment is required (--comment): say why, for whoever reads the journal");
    if (comment.length > MAX_COMMENT_CHARS)
      return refuse(400, `a comment has at most ${MAX_COMMENT_CHARS} characters`);
    if (typeof author !== "string" || author.length > MAX_AUTHOR_CHARS)
      return refuse(400, `an author is a name of at most ${MAX_AUTHOR_CHARS} characters`);
    const now = this.deps.clock.wallMs();
    if (startsAt !== null && startsAt !== undefined && !isTime(startsAt))
      return refuse(400, "startsAt: not a time");
    const start = startsAt === null || startsAt === undefined ? now : Math.max(now, startsAt);
    if (start - now > MAX_LEAD_MS) return refuse(400, "a window starts within a year");
    if (!isTime(endsAt) || endsAt <= start)
      return refuse(400, "the window must end after it starts, and after now");
    const bounds = this.bound(start, endsAt);
    if (bounds !== null) return refuse(400, bounds);
    if (all !== true && this.everyNode(selectors))
      return refuse(400, "these selectors match every node: say --all if that is meant");
    const w: MaintWindow = Object.freeze({
      id: newId(),
      match: Object.freeze(match.map(String)),
      author: author === "" ? "unknown" : author,
      comment: comment.trim(),
      startsAt: start,
      endsAt,
      createdAt: now,
      endedAt: null,
      rev: 1,
      by: this.deps.monitor,
    });
    if (this.deps.fits !== undefined && !this.deps.fits(w))
      return refuse(
        400,
        "this window is too large to share with the other monitors: use fewer selectors or a shorter comment",
      );
    if (this.deps.windows.size >= MAX_WINDOWS)
      return refuse(
        409,
        `${MAX_WINDOWS} windows are kept already: end some, or wait for ended ones to be dropped`,
      );
    this.deps.windows.add(w);
    return this.saved(w);
  }

  /** `hb maint extend`: body {id, endsAt}. */
  async extend(body: unknown): Promise<MaintReply> {
    if (!isRecord(body) || typeof body.id !== "string") return refuse(400, "give a window id");
    const w = this.deps.windows.get(body.id);
    if (w === undefined) return refuse(404, `no window ${body.id}`);
    const now = this.deps.clock.wallMs();
    const state = windowState(w, now);
    if (state === "ended" || state === "expired")
      return refuse(409, `window ${w.id} has ${state}: add a new one`);
    const endsAt = body.endsAt;
    if (!isTime(endsAt) || endsAt <= now || endsAt <= w.startsAt)
      return refuse(400, "the new end must be after now and after the window starts");
    const bounds = this.bound(w.startsAt, endsAt);
    if (bounds !== null) return refuse(400, bounds);
    return this.saved(this.deps.windows.extend(w, endsAt));
  }

  /** `hb maint end`: body {id}. */
  async end(body: unknown): Promise<MaintReply> {
    if (!isRecord(body) || typeof body.id !== "string") return refuse(400, "give a window id");
    const w = this.deps.windows.get(body.id);
    if (w === undefined) return refuse(404, `no window ${body.id}`);
    const state = windowState(w, this.deps.clock.wallMs());
    if (state === "ended" || state === "expired") return refuse(409, `window ${w.id} has ${state} already`);
    return this.saved(this.deps.windows.end(w));
  }

  /** The answer once the change is on disk; a change in effect that could not be kept says so. */
  private async saved(w: MaintWindow): Promise<MaintReply> {
    try {
      await this.deps.save();
    } catch (err) {
      return refuse(
        507,
        `window ${w.id} is in effect, but could not be kept in the state directory (a restart loses it): ${(err as Error).message}`,
      );
    }
    return this.reply(w);
  }

  list(): MaintList {
    return { now: this.deps.clock.wallMs(), ...this.deps.windows.list() };
  }

  private bound(startsAt: number, endsAt: number): string | null {
    const max = this.deps.config().maintenance.maxDurationMs;
    return endsAt - startsAt > max
      ? `a window lasts at most maintenance.max_duration (${Math.round(max / 3_600_000)}h)`
      : null;
  }

  /** Whether the selectors match every node known (and there are at least two), or any id at all. */
  private everyNode(selectors: readonly Selector[]): boolean {
    if (selectors.some((s) => s.kind === "glob" && /^\*+$/.test(s.pattern))) return true;
    let known = 0;
    let matched = 0;
    this.deps.forEachNode((id, labels) => {
      known++;
      if (matchesAny(selectors, id, labels)) matched++;
    });
    return known >= 2 && matched === known;
  }
}
