/**
 * `--watch`: calls back when a config file changes, however it was saved. Editors, Ansible and Kubernetes
 * ConfigMaps save by writing a new file and renaming it over the old one: a watch on the file itself follows the
 * old inode and goes deaf after the first such save. So the directory is watched: an event naming the file, or
 * any event after which the file (followed through symlinks, as a ConfigMap's `..data` swap needs) has another
 * inode, size or time, is a change. Events are settled for a moment first, as a save takes several steps.
 */
import fs from 'node:fs';
import path from 'node:path';

/** How long a burst of events is left to settle before the change is reported. */
const SETTLE_MS = 200;

export class ConfigWatch {
  readonly #file: string;
  readonly #base: string;
  readonly #onChange: () => void;
  readonly #watcher: fs.FSWatcher;
  #seen: string;
  #named = false;
  #timer: NodeJS.Timeout | undefined;

  /**
   * `loaded` is the file's {@link configSignature} taken before the running configuration was read from it: a
   * save between that read and this watch raises no event here, and is reported as a change all the same.
   * Throws (from fs.watch) when the file's directory cannot be watched.
   */
  constructor(file: string, onChange: () => void, loaded = configSignature(file)) {
    this.#file = file;
    this.#base = path.basename(file);
    this.#onChange = onChange;
    this.#seen = loaded;
    this.#watcher = fs.watch(path.dirname(path.resolve(file)), (_event, name) => this.#event(name));
    // A directory that goes away ends the watch; SIGHUP still reloads.
    this.#watcher.on('error', () => this.close());
    if (configSignature(file) !== loaded) this.#event(null);
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#watcher.close();
  }

  #event(name: string | Buffer | null): void {
    // Some platforms give no name: then only the file's signature can tell.
    if (name === null || String(name) === this.#base) this.#named = true;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#settled(), SETTLE_MS);
  }

  #settled(): void {
    const now = configSignature(this.#file);
    const changed = this.#named || now !== this.#seen;
    this.#named = false;
    this.#seen = now;
    if (changed) this.#onChange();
  }
}

/** A file's identity and content stamp, through symlinks; empty while it does not exist (mid-rename). */
export function configSignature(file: string): string {
  try {
    const s = fs.statSync(file, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return '';
  }
}
