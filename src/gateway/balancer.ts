/**
 * Which upstream of a route takes a new connection, as a pure decision over the members' weights, health and
 * open connections (no sockets, no clock), so that every property can be tested without a network:
 *
 * - `round-robin`: nginx's smooth weighted round-robin (ngx_http_upstream_round_robin.c): weights 3 and 1 give
 *   a a b a, never a a a b.
 * - `least-connections`: the fewest open connections for its weight (HAProxy's `leastconn`), ties broken by
 *   the smooth round-robin among the tied.
 * - `hash`: rendezvous hashing (highest random weight, Thaler and Ravishankar 1998), weighted as in Schindelhauer
 *   and Schomaker's "weighted distributed hash tables": each member scores `-weight / ln(h(key, member))` and the
 *   highest live one wins. A dead member's keys go to their second choice and nobody else's move; when it
 *   recovers they come back. Without a key (the header is absent) the route falls back to round-robin.
 *
 * The answer is an order to try: the chosen member, then the other live ones (failover), then the dead ones
 * (when every member is marked dead, trying them beats refusing: one may be back before its health check).
 */
import { getHeaderValues, type HeaderList } from '../protocol/headers.js';
import type { Balance, HashKey } from './route-config.js';

export interface Member {
  /** Stable across reloads and reorderings: the upstream's URL. */
  readonly id: string;
  readonly weight: number;
  readonly alive: boolean;
  /** Connections open to it now (least-connections). */
  readonly active: number;
}

/** A 32-bit FNV-1a over the string's UTF-16 units, finished with murmur3's avalanche (fmix32). */
function hash32(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The weighted rendezvous score of `member` for `key`: higher wins. */
export function rendezvousScore(key: string, member: string, weight: number): number {
  const s = `${key}\0${member}`;
  // 53 uniform bits, strictly inside (0, 1), so the logarithm is finite and negative.
  const u = (hash32(s, 0x9e3779b9) * 2 ** 21 + (hash32(s, 0x85ebca6b) >>> 11) + 0.5) / 2 ** 53;
  return -weight / Math.log(u);
}

/** Member indices by rendezvous score for `key`, best first (ties by index, so the order is total). */
export function rendezvousOrder(key: string, members: readonly Member[]): number[] {
  const scores = members.map((m) => rendezvousScore(key, m.id, m.weight));
  return members.map((_, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
}

/** nginx's smooth weighted round-robin: state is one running number per member. */
export class SmoothRoundRobin {
  readonly #current: number[];

  constructor(size: number) {
    this.#current = new Array<number>(size).fill(0);
  }

  /** The next member among those `eligible` says yes to, or undefined when there is none. */
  pick(members: readonly Member[], eligible: (i: number) => boolean): number | undefined {
    let best: number | undefined;
    let total = 0;
    for (let i = 0; i < members.length; i++) {
      if (!eligible(i)) continue;
      const w = (members[i] as Member).weight;
      this.#current[i] = (this.#current[i] ?? 0) + w;
      total += w;
      if (best === undefined || (this.#current[i] as number) > (this.#current[best] as number)) best = i;
    }
    if (best !== undefined) this.#current[best] = (this.#current[best] as number) - total;
    return best;
  }
}

/** One route's balancing state (the round-robin position); a reload starts a new one. */
export class Balancer {
  readonly #balance: Balance;
  readonly #rr: SmoothRoundRobin;

  constructor(balance: Balance, size: number) {
    this.#balance = balance;
    this.#rr = new SmoothRoundRobin(size);
  }

  /** The order to try `members` in for one new connection; `key` is the request's hash key, if any. */
  order(members: readonly Member[], key: string | undefined): number[] {
    if (this.#balance === 'hash' && key !== undefined) {
      const ranked = rendezvousOrder(key, members);
      return [...ranked.filter((i) => members[i]?.alive), ...ranked.filter((i) => !members[i]?.alive)];
    }
    const first =
      this.#balance === 'least-connections'
        ? this.#leastLoaded(members)
        : this.#rr.pick(members, (i) => alive(members, i));
    // Failover goes on from the chosen one, so one dead member's load spreads rather than all landing on index 0.
    const start = first ?? 0;
    const rest = members.map((_, i) => (start + 1 + i) % members.length).filter((i) => i !== first);
    const live = rest.filter((i) => alive(members, i));
    const dead = rest.filter((i) => !alive(members, i));
    return first === undefined ? dead : [first, ...live, ...dead];
  }

  #leastLoaded(members: readonly Member[]): number | undefined {
    let least = Infinity;
    for (let i = 0; i < members.length; i++) {
      const m = members[i] as Member;
      if (m.alive) least = Math.min(least, m.active / m.weight);
    }
    return this.#rr.pick(
      members,
      (i) => alive(members, i) && (members[i] as Member).active / (members[i] as Member).weight === least,
    );
  }
}

function alive(members: readonly Member[], i: number): boolean {
  return members[i]?.alive === true;
}

/** What a request offers to hash on. */
export interface KeySource {
  /** The client's address (the socket's peer, or the PROXY protocol source). */
  readonly address: string;
  readonly headers: HeaderList;
  /** The request-target (origin-form). */
  readonly target: string;
}

/** The value `key` names in a request, or undefined when the request has none (then round-robin applies). */
export function requestKey(key: HashKey, req: KeySource): string | undefined {
  switch (key.kind) {
    case 'client-ip':
      return req.address;
    case 'header': {
      const values = getHeaderValues(req.headers, key.name);
      return values.length === 0 ? undefined : values.join(', ');
    }
    case 'cookie': {
      // HTTP/2 may split Cookie into one field per cookie (RFC 9113 §8.2.3): every field is searched.
      for (const field of getHeaderValues(req.headers, 'cookie')) {
        for (const pair of field.split(';')) {
          const eq = pair.indexOf('=');
          if (eq > 0 && pair.slice(0, eq).trim() === key.name) return pair.slice(eq + 1).trim();
        }
      }
      return undefined;
    }
    case 'query': {
      const q = req.target.indexOf('?');
      if (q < 0) return undefined;
      return new URLSearchParams(req.target.slice(q + 1).split('#')[0]).get(key.name) ?? undefined;
    }
  }
}
