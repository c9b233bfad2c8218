/**
 * Issue 7: WebSocket -> TCP bridges side by side in front of the same TCP echo (websockify and wsvia bridge), and
 * `wsvia tunnel` (TCP -> WebSocket) through squid against the same tunnel without a proxy and plain TCP.
 */
import type { ThroughputResult, WsTarget } from '../jobs.js';
import { runJob } from '../measure.js';
import { memoryPerConnection } from '../memory.js';
import {
  startSquid,
  startWebsockify,
  startWsviaBridge,
  startWsviaTunnel,
  wsviaHas,
  type BenchPeer,
  type Targets,
} from '../peers.js';
import type { Section } from '../report.js';
import type { Settings } from '../settings.js';
import {
  attempt,
  interleave,
  log,
  MB,
  Samples,
  wsBulkEchoStep,
  wsSetupStep,
  type Contender,
} from './common.js';

const PROTOCOLS = ['binary'] as const;

export async function bridgeSection(s: Settings, targets: Targets): Promise<Section> {
  const notes: string[] = [];
  const configs: Record<string, string> = {};
  const hasBridge = wsviaHas('bridge', 'bridge');
  const hasTunnel = wsviaHas('tunnel', 'bridge');
  if (!hasBridge) notes.push('wsvia bridge is not in this build yet: ratios are not available');
  const starters: { name: string; start: () => Promise<BenchPeer>; idle: number }[] = [
    ...(hasBridge
      ? [{ name: 'wsvia bridge', start: () => startWsviaBridge(targets.echoPort), idle: s.bridgeIdle }]
      : []),
    { name: 'websockify', start: () => startWebsockify(targets.echoPort), idle: s.websockifyIdle },
  ];
  const peers: BenchPeer[] = [];
  for (const p of starters) {
    await attempt(`start ${p.name}`, notes, async () => {
      const peer = await p.start();
      peers.push(peer);
      configs[peer.name] = peer.config;
    });
  }
  const target = (c: Contender): WsTarget => {
    const peer = peers.find((p) => p.name === c.name) as BenchPeer;
    return { url: `ws://127.0.0.1:${peer.port}/`, protocols: PROTOCOLS };
  };
  const contenders: Contender[] = peers.map((p) => ({ name: p.name, pid: p.pid }));
  const samples = new Samples();

  // wsvia tunnel -> (squid) -> wsvia bridge -> TCP sink, against plain TCP to the sink.
  const tunnelPeers: BenchPeer[] = [];
  const tunnelRows: Contender[] = [{ name: 'direct TCP', isLimit: true }];
  let sinkBridge: BenchPeer | undefined;
  if (hasBridge && hasTunnel) {
    await attempt('start tunnels', notes, async () => {
      sinkBridge = await startWsviaBridge(targets.sinkPort);
      const squid = await startSquid();
      tunnelPeers.push(squid);
      const url = `ws://127.0.0.1:${sinkBridge.port}/`;
      const direct = await startWsviaTunnel(url);
      const viaSquid = await startWsviaTunnel(url, `http://127.0.0.1:${squid.port}`);
      tunnelPeers.push(direct, viaSquid);
      configs[direct.name] = direct.config;
      configs[viaSquid.name] = viaSquid.config;
      tunnelRows.push({ name: direct.name, pid: direct.pid }, { name: viaSquid.name, pid: viaSquid.pid });
    });
  } else if (!hasTunnel)
    notes.push('wsvia tunnel is not in this build yet: its throughput through squid is not measured');

  try {
    await interleave(
      s.rounds,
      contenders,
      [
        wsSetupStep(target, s.setupCount, samples, notes),
        wsBulkEchoStep('64 KiB messages', target, s.echoSeconds, samples),
      ],
      notes,
    );
    // One short run through each tunnel first: its first WebSocket and its code's first use are not the figure.
    for (const peer of tunnelPeers.filter((p) => p.name.startsWith('wsvia tunnel'))) {
      await attempt(`${peer.name} warm-up`, notes, async () => {
        await runJob({
          kind: 'tcp-throughput',
          via: { kind: 'direct', port: peer.port },
          bytes: 4 * 1024 * 1024,
        });
      });
    }
    await interleave(
      s.rounds,
      tunnelRows,
      [
        {
          what: 'tunnel throughput',
          run: async (c) => {
            const peer = tunnelPeers.find((p) => p.name === c.name);
            const r = await runJob<ThroughputResult>({
              kind: 'tcp-throughput',
              via: { kind: 'direct', port: peer ? peer.port : targets.sinkPort },
              bytes: s.throughputBytes / 2,
            });
            samples.add(c.name, 'tunnelMbps', r.bytes / MB / r.seconds);
          },
        },
      ],
      notes,
    );
    for (const c of [...contenders, ...tunnelRows]) {
      const v = samples.row(c).values;
      log(
        `${c.name}: setup p50 ${v['p50']?.toFixed(2) ?? '-'} ms, ${v['mbps']?.toFixed(0) ?? '-'} MB/s, ${v['cpuPerGb']?.toFixed(2) ?? '-'} CPU s/GB, tunnel ${v['tunnelMbps']?.toFixed(0) ?? '-'} MB/s`,
      );
    }
  } finally {
    await Promise.all([...peers, ...tunnelPeers].map((p) => p.stop()));
    await sinkBridge?.stop();
  }

  log(`memory: idle connections per peer, each in a fresh process, ${s.memoryRuns} time(s)`);
  for (let run = 0; run < s.memoryRuns; run++) {
    for (const p of starters) {
      await attempt(`${p.name} memory`, notes, async () => {
        const ws = (peer: BenchPeer): WsTarget => ({
          url: `ws://127.0.0.1:${peer.port}/`,
          protocols: PROTOCOLS,
        });
        const m = await memoryPerConnection(
          p.start,
          (peer) => ({ kind: 'ws-setup', ws: ws(peer), count: 5 }),
          (peer) => ({
            kind: 'ws-idle',
            ws: ws(peer),
            count: p.idle,
            concurrency: Math.min(20, s.openConcurrency),
          }),
        );
        samples.add(p.name, 'kibIdle', m.kibPerConnection);
        samples.add(p.name, 'pssIdle', m.pssKibPerConnection);
        if (m.opened < p.idle)
          notes.push(
            `${p.name}: only ${m.opened} of ${p.idle} idle connections opened (${m.firstError ?? ''})`,
          );
        log(
          `${p.name}: ${m.kibPerConnection.toFixed(1)} KiB RSS, ${m.pssKibPerConnection.toFixed(1)} KiB PSS per idle connection (${m.opened} open, ${m.processes} processes)`,
        );
      });
    }
  }

  return {
    id: 'bridge',
    title: 'Bridge (issue 7): WebSocket -> TCP in front of one TCP echo, and wsvia tunnel through squid',
    reference: 'wsvia bridge',
    metrics: [
      { key: 'p50', label: 'setup p50', unit: 'ms', better: 'lower', digits: 2 },
      { key: 'p99', label: 'setup p99', unit: 'ms', better: 'lower', digits: 2 },
      { key: 'mbps', label: '64 KiB msgs', unit: 'MB/s', better: 'higher', digits: 0 },
      { key: 'cpuPerGb', label: 'CPU', unit: 's/GB', better: 'lower', digits: 2 },
      { key: 'kibIdle', label: 'idle conn RSS', unit: 'KiB', better: 'lower', digits: 1 },
      { key: 'pssIdle', label: 'idle conn PSS', unit: 'KiB', better: 'lower', digits: 1 },
      {
        key: 'tunnelMbps',
        label: 'tunnel throughput',
        unit: 'MB/s',
        better: 'higher',
        digits: 0,
        reference: 'wsvia tunnel',
      },
    ],
    rows: [...contenders, ...tunnelRows].map((c) => samples.row(c)),
    counts: [
      `setup: ${s.setupCount} sequential WebSockets (subprotocol binary) to the bridge, open = TCP to the echo made`,
      `64 KiB messages: 2 WebSockets, 4 binary messages in flight each, echoed by the TCP echo, ${s.echoSeconds} s; CPU s/GB = bridge process tree CPU / GB relayed (both directions)`,
      `idle connection: RSS (and PSS) delta over idle WebSockets in a fresh process: wsvia bridge ${s.bridgeIdle}, websockify ${s.websockifyIdle} (it forks a process per connection)`,
      `tunnel throughput: ${s.throughputBytes / 2 / 1024 / 1024} MiB TCP -> wsvia tunnel -L -> [squid CONNECT] -> wsvia bridge -> TCP sink; direct TCP is the client straight to the sink`,
    ],
    notes,
    configs,
  };
}
