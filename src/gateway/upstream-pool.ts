/**
 * Upstream pools: round-robin over the members believed alive. A member that refuses or times out is marked
 * dead at once and skipped by every later pick until a health check (a TCP connect, run by the gateway) finds it
 * back. Health is kept per upstream URL across reloads, so a reload does not resurrect a dead member.
 */
import type { RouteSpec, UpstreamSpec } from './config.js';

export interface UpstreamState {
  readonly spec: UpstreamSpec;
  healthy: boolean;
  /** When it was last marked dead (ms since epoch), 0 if never. */
  failedAt: number;
}

/** Health of every upstream the gateway knows, by URL. */
export class UpstreamHealth {
  readonly #states = new Map<string, UpstreamState>();

  state(spec: UpstreamSpec): UpstreamState {
    let s = this.#states.get(spec.url);
    if (!s) this.#states.set(spec.url, (s = { spec, healthy: true, failedAt: 0 }));
    return s;
  }

  markDead(spec: UpstreamSpec, now: number): boolean {
    const s = this.state(spec);
    const was = s.healthy;
    s.healthy = false;
    s.failedAt = now;
    return was;
  }

  markAlive(spec: UpstreamSpec): boolean {
    const s = this.state(spec);
    const was = s.healthy;
    s.healthy = true;
    return !was;
  }

  dead(): UpstreamState[] {
    return [...this.#states.values()].filter((s) => !s.healthy);
  }

  all(): UpstreamState[] {
    return [...this.#states.values()];
  }

  /** Forget upstreams no route names any more (after a reload). */
  retain(urls: ReadonlySet<string>): void {
    for (const k of this.#states.keys()) if (!urls.has(k)) this.#states.delete(k);
  }
}

export class UpstreamPool {
  readonly route: RouteSpec;
  readonly #health: UpstreamHealth;
  #next = 0;

  constructor(route: RouteSpec, health: UpstreamHealth) {
    this.route = route;
    this.#health = health;
    for (const u of route.upstreams) health.state(u);
  }

  /**
   * The order to try members in for one request: the live ones from the round-robin position, then the dead
   * ones (when every member is marked dead, trying them beats refusing: one may be back before its check).
   */
  candidates(): UpstreamSpec[] {
    const ups = this.route.upstreams;
    const start = this.#next % ups.length;
    this.#next = (this.#next + 1) % ups.length;
    const rotated = [...ups.slice(start), ...ups.slice(0, start)];
    const live = rotated.filter((u) => this.#health.state(u).healthy);
    const dead = rotated.filter((u) => !this.#health.state(u).healthy);
    return [...live, ...dead];
  }
}
