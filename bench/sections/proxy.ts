/**
 * Issue 3: forward proxies side by side: direct TCP (the limit), wsvia proxy, squid, tinyproxy, the `proxy` npm
 * package and proxy-chain, all relaying to the same targets on loopback.
 */
import type { EchoResult, LatencyResult, RateResult, ThroughputResult, Via } from '../jobs.js';
import { percentile, runJob, withCpu } from '../measure.js';
import { memoryPerConnection } from '../memory.js';
import {
  startNodeProxy,
  startSquid,
  startTinyproxy,
  startWsviaProxy,
  wsviaHas,
  type BenchPeer,
  type Targets,
} from '../peers.js';
import type { Section } from '../report.js';
import type { Settings } from '../settings.js';
import { attempt, GB, interleave, log, MB, Samples, type Contender } from './common.js';

const STARTERS: readonly { name: string; start: () => Promise<BenchPeer>; wsvia?: boolean }[] = [
  // The default relay (auto: the native splice relay where it loads) and the JavaScript relay, same run (issue 15).
  { name: 'wsvia proxy', start: () => startWsviaProxy(), wsvia: true },
  { name: 'wsvia proxy --relay js', start: () => startWsviaProxy('js'), wsvia: true },
  { name: 'squid', start: startSquid },
  { name: 'tinyproxy', start: startTinyproxy },
  { name: 'proxy (npm)', start: () => startNodeProxy('proxy') },
  { name: 'proxy-chain', start: () => startNodeProxy('proxy-chain') },
];

export async function proxySection(s: Settings, targets: Targets): Promise<Section> {
  const notes: string[] = [];
  const configs: Record<string, string> = {};
  const hasWsvia = wsviaHas('proxy', 'proxy');
  if (!hasWsvia) notes.push('wsvia proxy is not in this build yet: ratios are not available');
  const starters = STARTERS.filter((p) => !p.wsvia || hasWsvia);

  const peers: BenchPeer[] = [];
  for (const p of starters) {
    await attempt(`start ${p.name}`, notes, async () => {
      const peer = await p.start();
      peers.push(peer);
      configs[peer.name] = peer.config;
    });
  }
  const via = (c: Contender, targetPort: number): Via => {
    const peer = peers.find((p) => p.name === c.name);
    return peer
      ? { kind: 'connect', proxyPort: peer.port, targetPort }
      : { kind: 'direct', port: targetPort };
  };
  const wsVia = (c: Contender): { url: string; proxyPort?: number } => {
    const peer = peers.find((p) => p.name === c.name);
    return { url: `ws://127.0.0.1:${targets.wsPort}/`, ...(peer ? { proxyPort: peer.port } : {}) };
  };
  const contenders: Contender[] = [
    { name: 'direct TCP', isLimit: true },
    ...peers.map((p) => ({ name: p.name, pid: p.pid })),
  ];
  const samples = new Samples();

  try {
    const steps: readonly { what: string; run: (c: Contender, round: number) => Promise<void> }[] = [
      {
        what: 'throughput',
        run: async (c) => {
          const job = {
            kind: 'tcp-throughput',
            via: via(c, targets.sinkPort),
            bytes: s.throughputBytes,
          } as const;
          const { result, cpu } = c.pid
            ? await withCpu<ThroughputResult>(c.pid, job)
            : { result: await runJob<ThroughputResult>(job), cpu: NaN };
          samples.add(c.name, 'mbps', result.bytes / MB / result.seconds);
          if (c.pid) samples.add(c.name, 'cpuPerGb', cpu / (result.bytes / GB));
        },
      },
      {
        what: 'setup',
        run: async (c, round) => {
          const r = await runJob<LatencyResult>({
            kind: 'tcp-setup',
            via: via(c, targets.sinkPort),
            count: s.setupCount,
          });
          samples.add(c.name, 'p50', percentile(r.latenciesMs, 50));
          samples.add(c.name, 'p99', percentile(r.latenciesMs, 99));
          if (r.errors) notes.push(`${c.name}: ${r.errors} setup errors in round ${round + 1}`);
        },
      },
      {
        what: 'tunnels/s',
        run: async (c, round) => {
          const r = await runJob<RateResult>({
            kind: 'tcp-rate',
            via: via(c, targets.sinkPort),
            concurrency: s.rateConcurrency,
            seconds: s.rateSeconds,
          });
          samples.add(c.name, 'rate', r.completed / r.seconds);
          if (r.errors)
            notes.push(`${c.name}: ${r.errors} failed tunnels under concurrency in round ${round + 1}`);
        },
      },
      {
        what: 'ws echo',
        run: async (c) => {
          const r = await runJob<EchoResult>({
            kind: 'ws-echo',
            ws: wsVia(c),
            connections: 4,
            size: 32,
            window: 32,
            seconds: s.echoSeconds,
          });
          samples.add(c.name, 'wsMsgs', r.bytes / 32 / r.seconds);
        },
      },
    ];
    await interleave(s.rounds, contenders, steps, notes);
    for (const c of contenders) {
      const v = samples.row(c).values;
      log(
        `${c.name}: ${v['mbps']?.toFixed(0)} MB/s, ${v['cpuPerGb']?.toFixed(2) ?? '-'} CPU s/GB, setup p50 ${v['p50']?.toFixed(2)} ms, ${v['rate']?.toFixed(0)} tunnels/s, ${v['wsMsgs']?.toFixed(0)} ws msgs/s`,
      );
    }
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
  }

  log(`memory: ${s.proxyIdle} idle tunnels per peer, each in a fresh process, ${s.memoryRuns} time(s)`);
  for (let run = 0; run < s.memoryRuns; run++) {
    for (const p of starters) {
      await attempt(`${p.name} memory`, notes, async () => {
        const m = await memoryPerConnection(
          p.start,
          (peer) => ({
            kind: 'tcp-setup',
            via: { kind: 'connect', proxyPort: peer.port, targetPort: targets.sinkPort },
            count: 20,
          }),
          (peer) => ({
            kind: 'tcp-idle',
            via: { kind: 'connect', proxyPort: peer.port, targetPort: targets.sinkPort },
            count: s.proxyIdle,
            concurrency: s.openConcurrency,
          }),
        );
        samples.add(p.name, 'kibIdle', m.kibPerConnection);
        if (m.opened < s.proxyIdle)
          notes.push(
            `${p.name}: only ${m.opened} of ${s.proxyIdle} idle tunnels opened (${m.firstError ?? 'no error text'})`,
          );
        log(
          `${p.name}: ${m.kibPerConnection.toFixed(1)} KiB per idle tunnel (${m.opened} open, base ${(m.baseKiB / 1024).toFixed(1)} MiB)`,
        );
      });
    }
  }

  return {
    id: 'proxy',
    title: 'Forward proxy (issue 3): CONNECT tunnels',
    reference: 'wsvia proxy',
    metrics: [
      { key: 'mbps', label: 'throughput', unit: 'MB/s', better: 'higher', digits: 0 },
      { key: 'cpuPerGb', label: 'CPU', unit: 's/GB', better: 'lower', digits: 2 },
      { key: 'kibIdle', label: 'idle tunnel', unit: 'KiB', better: 'lower', digits: 1 },
      { key: 'p50', label: 'setup p50', unit: 'ms', better: 'lower', digits: 2 },
      { key: 'p99', label: 'setup p99', unit: 'ms', better: 'lower', digits: 2 },
      { key: 'rate', label: 'new tunnels', unit: '/s', better: 'higher', digits: 0 },
      { key: 'wsMsgs', label: 'ws echo', unit: 'msgs/s', better: 'higher', digits: 0 },
    ],
    rows: contenders.map((c) => samples.row(c)),
    counts: [
      `throughput and CPU: ${s.throughputBytes / 1024 / 1024} MiB client -> sink through one tunnel; CPU s/GB = proxy process tree CPU (utime+stime, children included) / GB relayed`,
      `setup: ${s.setupCount} sequential tunnels (connect + CONNECT + 2xx); new tunnels/s: ${s.rateConcurrency} clients open and close tunnels for ${s.rateSeconds} s`,
      `ws echo: 4 WebSockets through a CONNECT tunnel, 32-byte binary messages, 32 in flight each, ${s.echoSeconds} s`,
      `idle tunnel: RSS delta over ${s.proxyIdle} idle tunnels in a fresh process (after 20 warm-up tunnels)`,
    ],
    notes,
    configs,
  };
}
