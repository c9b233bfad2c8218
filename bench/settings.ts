/** Counts and durations of a run: the full one (about 10 minutes on 2 cores) and `--quick` (a smoke run). */
export interface Settings {
  readonly quick: boolean;
  /** Rounds of the interleaved runs; every figure but memory is the median over rounds. */
  readonly rounds: number;
  /** Bytes through one tunnel per throughput run. */
  readonly throughputBytes: number;
  /** Sequential connections per setup-latency run. */
  readonly setupCount: number;
  /** Concurrent clients opening and closing tunnels. */
  readonly rateConcurrency: number;
  readonly rateSeconds: number;
  /** Duration of each echo run. */
  readonly echoSeconds: number;
  /** Idle connections per memory run: forward proxy, gateway, bridge, websockify (a process each). */
  readonly proxyIdle: number;
  readonly gatewayIdle: number;
  readonly bridgeIdle: number;
  readonly websockifyIdle: number;
  /** Memory runs per peer (each a fresh process); the figure is their median. */
  readonly memoryRuns: number;
  /** At most this many connections opened at once while filling a memory run. */
  readonly openConcurrency: number;
}

export const FULL: Settings = {
  quick: false,
  rounds: 4,
  throughputBytes: 512 * 1024 * 1024,
  setupCount: 300,
  rateConcurrency: 50,
  rateSeconds: 2,
  echoSeconds: 2,
  proxyIdle: 5000,
  gatewayIdle: 2000,
  bridgeIdle: 1000,
  websockifyIdle: 200,
  openConcurrency: 100,
  memoryRuns: 2,
};

export const QUICK: Settings = {
  quick: true,
  rounds: 1,
  throughputBytes: 64 * 1024 * 1024,
  setupCount: 50,
  rateConcurrency: 50,
  rateSeconds: 1,
  echoSeconds: 1,
  proxyIdle: 500,
  gatewayIdle: 300,
  bridgeIdle: 200,
  websockifyIdle: 50,
  openConcurrency: 50,
  memoryRuns: 1,
};

/** The file-descriptor budget: each idle proxied connection costs the peer two descriptors. */
export function fitToFdLimit(s: Settings, limit: number): { settings: Settings; note?: string } {
  const maxIdle = Math.floor((limit - 500) / 2);
  if (s.proxyIdle <= maxIdle) return { settings: s };
  return {
    settings: {
      ...s,
      proxyIdle: maxIdle,
      gatewayIdle: Math.min(s.gatewayIdle, maxIdle),
      bridgeIdle: Math.min(s.bridgeIdle, maxIdle),
    },
    note: `open-file limit ${limit}: idle connections reduced to ${maxIdle} (raise it with \`ulimit -n\`)`,
  };
}

export function describe(s: Settings): string[] {
  const mib = (b: number): string => `${b / 1024 / 1024} MiB`;
  return [
    `${s.rounds} interleaved round(s); each figure is the median over rounds (memory: median of ${s.memoryRuns} fresh process(es) per peer)`,
    `throughput: ${mib(s.throughputBytes)} through one connection in 64 KiB writes`,
    `setup latency: ${s.setupCount} sequential connections per round`,
    `new tunnels/s: ${s.rateConcurrency} concurrent clients for ${s.rateSeconds} s`,
    `echo runs: ${s.echoSeconds} s each`,
    `idle connections for memory: proxy ${s.proxyIdle}, gateway ${s.gatewayIdle}, bridge ${s.bridgeIdle}, websockify ${s.websockifyIdle}`,
  ];
}
