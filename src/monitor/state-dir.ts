// The state directory (/var/lib/hb): the one owner of every file the monitor keeps there. A file
// is read once, before anything is judged; it is written whole or not at all (a temporary file in
// the same directory, synced, renamed over the old one, and the directory synced), and saves asked
// for while one is under way are coalesced into one more, which writes what is true by then.

import * as nodeFs from "node:fs/promises";
import { join } from "node:path";
import { HbError } from "../errors.js";

/** The file system calls the owner makes (tests replace them to make a step fail). */
export type StateFs = Pick<typeof nodeFs, "mkdir" | "open" | "readFile" | "rename">;

/** What a file is, for the operator who has to fix it. */
export interface StateFileSpec {
  /** Its name in the directory. */
  readonly name: string;
  /** What it holds, e.g. "the replay marks". */
  readonly what: string;
  /** What removing it costs, said when it cannot be read. */
  readonly ifRemoved: string;
}

export class StateDir {
  private readonly files = new Map<string, StateFile>();

  constructor(
    readonly path: string,
    private readonly fs: StateFs = nodeFs,
  ) {}

  /** The one handle on `spec.name`: asked twice, the same file (saves to it are coalesced). */
  file(spec: StateFileSpec): StateFile {
    let file = this.files.get(spec.name);
    if (file === undefined) this.files.set(spec.name, (file = new StateFile(this.path, spec, this.fs)));
    return file;
  }
}

export class StateFile {
  readonly path: string;
  /** The write under way, or the last one (settled). */
  private tail: Promise<void> = Promise.resolve();
  /** A write asked for that has not begun: later asks join it. */
  private pending: Promise<void> | null = null;
  private render: () => string = () => "";

  constructor(
    private readonly dir: string,
    private readonly spec: StateFileSpec,
    private readonly fs: StateFs,
  ) {
    this.path = join(dir, spec.name);
  }

  /**
   * The file's text; null when there is none. A file that exists but cannot be read is not a
   * crash to restart from: the operator must fix it (or remove it), so it is an HB_ERR_STATE_FILE.
   */
  async load(): Promise<string | null> {
    try {
      return await this.fs.readFile(this.path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return null;
      throw new HbError(
        "HB_ERR_STATE_FILE",
        `cannot read ${this.spec.what} ${this.path}: ${code ?? (err as Error).message} (fix its owner and mode, or remove it: ${this.spec.ifRemoved})`,
        { cause: err },
      );
    }
  }

  /**
   * Writes what `render` returns once the write before it (if any) is done. Asks made before this
   * write begins share it, and it writes the text of the last of them, rendered as it begins.
   */
  save(render: () => string): Promise<void> {
    this.render = render;
    if (this.pending !== null) return this.pending;
    const write = this.tail.then(() => {
      this.pending = null;
      return this.write(this.render());
    });
    this.pending = write;
    this.tail = write.catch(() => undefined);
    return write;
  }

  private async write(text: string): Promise<void> {
    const temporary = `${this.path}.tmp`;
    await this.fs.mkdir(this.dir, { recursive: true });
    const file = await this.fs.open(temporary, "w", 0o600);
    try {
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    // Until the rename the old file stays whole; a temporary one left by a crash is never read.
    await this.fs.rename(temporary, this.path);
    const dir = await this.fs.open(this.dir, "r");
    try {
      await dir.sync();
    } catch (err) {
      // Some file systems cannot sync a directory; the rename is then as durable as they make it.
      if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err;
    } finally {
      await dir.close();
    }
  }
}
