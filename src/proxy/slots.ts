/**
 * The proxy's admission counts (`--max-tunnels`, `--max-tunnels-per-client`): a tunnel or forwarded exchange
 * holds one {@link Slot} from the moment it is admitted. A slot is given back exactly once, by its `release()` or,
 * at the latest, when the last socket it is held by has closed, so no failure path can keep it (STYLE.md trap 16).
 */
import type { Socket } from 'node:net';
import { CountsByKey } from '../observe/counts-by-key.js';
import type { ProxyFailure } from './error-response.js';

export interface SlotLimits {
  readonly maxTunnels: number;
  readonly maxTunnelsPerClient: number;
}

export class Slots {
  readonly #limits: SlotLimits;
  readonly #perClient = new CountsByKey();
  readonly #onChange: (active: number) => void;
  #active = 0;

  constructor(limits: SlotLimits, onChange: (active: number) => void) {
    this.#limits = limits;
    this.#onChange = onChange;
  }

  /** Slots held now. */
  get active(): number {
    return this.#active;
  }

  /** Why `key` may not take another slot (503 when the proxy is full, 429 for the client), or undefined. */
  refusal(key: string): ProxyFailure | undefined {
    const { maxTunnels, maxTunnelsPerClient } = this.#limits;
    if (this.#active >= maxTunnels)
      return {
        status: 503,
        error: 'connection_limit_reached',
        details: `the proxy has ${this.#active} tunnels open, its limit (--max-tunnels ${maxTunnels})`,
        rule: `--max-tunnels ${maxTunnels}`,
        reason: 'limit',
        headers: [['Retry-After', '1']],
      };
    const perClient = this.#perClient.get(key);
    if (perClient >= maxTunnelsPerClient)
      return {
        status: 429,
        error: 'connection_limit_reached',
        details: `${key} has ${perClient} tunnels open, its limit (--max-tunnels-per-client ${maxTunnelsPerClient})`,
        rule: `--max-tunnels-per-client ${maxTunnelsPerClient}`,
        reason: 'limit',
        headers: [['Retry-After', '1']],
      };
    return undefined;
  }

  /** Takes a slot for `key`, held while `socket` is open (see {@link Slot.holdWhile}). */
  take(key: string, socket: Socket): Slot {
    this.#active++;
    this.#perClient.add(key);
    this.#onChange(this.#active);
    return new Slot(() => this.#give(key)).holdWhile(socket);
  }

  #give(key: string): void {
    this.#active--;
    this.#perClient.remove(key);
    this.#onChange(this.#active);
  }
}

export class Slot {
  readonly #give: () => void;
  readonly #sockets = new Set<Socket>();
  #held = true;
  readonly #onClose = (): void => {
    for (const s of this.#sockets) if (s.closed) this.#sockets.delete(s);
    if (this.#sockets.size === 0) this.release();
  };

  constructor(give: () => void) {
    this.#give = give;
  }

  /**
   * Keeps the slot while `socket` is open too: it is given back once every socket it is held by has closed (for a
   * tunnel, both of its sockets, as the relay finishes it).
   */
  holdWhile(socket: Socket): this {
    if (!this.#held) return this;
    if (socket.closed) {
      this.#onClose();
      return this;
    }
    this.#sockets.add(socket);
    socket.once('close', this.#onClose);
    return this;
  }

  /** Gives the slot back now (an error answer); a second call, or a close after it, does nothing. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    for (const s of this.#sockets) s.removeListener('close', this.#onClose);
    this.#sockets.clear();
    this.#give();
  }
}
