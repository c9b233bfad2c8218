/**
 * Issue 6: WebSocket reverse proxies side by side in front of the same `ws` echo server: direct (the limit),
 * wsvia gateway, nginx and HAProxy.
 */
import type { EchoResult, WsTarget } from '../jobs.js';
import { runJob } from '../measure.js';
import { memoryPerConnection } from '../memory.js';
import {
  startHaproxy,
  startNginx,
  startWsviaGateway,
  wsviaHas,
  type BenchPeer,
  type Targets,
} from '../peers.js';
import type { Section } from '../report.js';
import type { Settings } from '../settings.js';
import { attempt, interleave, log, Samples, wsBulkEchoStep, wsSetupStep, type Contender } from './common.js';

const SMALL = 32;
/**
 * The quiet before the memory baseline, and how much longer the idle WebSockets stay before a second reading (V8
 * collects once allocation stops).
 */
const SETTLE_MS = 15_000;

export async function gatewaySection(s: Settings, targets: Targets): Promise<Section> {
  const notes: string[] = [];
  const configs: Record<string, string> = {};
  const hasWsvia = wsviaHas('gateway', 'gateway');
  if (!hasWsvia) notes.push('wsvia gateway is not in this build yet: ratios are not available');
  const starters: { name: string; start: () => Promise<BenchPeer> }[] = [
    // The default relay (auto: the native WebSocket relay where it loads) and the JavaScript relay (issue 15).
    ...(hasWsvia
      ? [
          { name: 'wsvia gateway', start: () => startWsviaGateway(targets.wsPort) },
          { name: 'wsvia gateway --relay js', start: () => startWsviaGateway(targets.wsPort, 'js') },
        ]
      : []),
    { name: 'nginx', start: () => startNginx(targets.wsPort) },
    { name: 'HAProxy', start: () => startHaproxy(targets.wsPort) },
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
    const peer = peers.find((p) => p.name === c.name);
    return { url: `ws://127.0.0.1:${peer ? peer.port : targets.wsPort}/` };
  };
  const contenders: Contender[] = [
    { name: 'direct', isLimit: true },
    ...peers.map((p) => ({ name: p.name, pid: p.pid })),
  ];
  const samples = new Samples();

  try {
    await interleave(
      s.rounds,
      contenders,
      [
        wsSetupStep(target, s.setupCount, samples, notes),
        wsBulkEchoStep('64 KiB echo', target, s.echoSeconds, samples),
        {
          what: '32-byte echo',
          run: async (c) => {
            const r = await runJob<EchoResult>({
              kind: 'ws-echo',
              ws: target(c),
              connections: 8,
              size: SMALL,
              window: 32,
              seconds: s.echoSeconds,
            });
            samples.add(c.name, 'msgs', r.bytes / SMALL / r.seconds);
          },
        },
      ],
      notes,
    );
    for (const c of contenders) {
      const v = samples.row(c).values;
      log(
        `${c.name}: setup p50 ${v['p50']?.toFixed(2)} ms, ${v['mbps']?.toFixed(0)} MB/s, ${v['cpuPerGb']?.toFixed(2) ?? '-'} CPU s/GB, ${v['msgs']?.toFixed(0)} msgs/s`,
      );
    }
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
  }

  log(`memory: ${s.gatewayIdle} idle WebSockets per peer, each in a fresh process, ${s.memoryRuns} time(s)`);
  for (let run = 0; run < s.memoryRuns; run++) {
    for (const p of starters) {
      await attempt(`${p.name} memory`, notes, async () => {
        const m = await memoryPerConnection(
          p.start,
          (peer) => ({ kind: 'ws-setup', ws: { url: `ws://127.0.0.1:${peer.port}/` }, count: 20 }),
          (peer) => ({
            kind: 'ws-idle',
            ws: { url: `ws://127.0.0.1:${peer.port}/` },
            count: s.gatewayIdle,
            concurrency: s.openConcurrency,
          }),
          SETTLE_MS,
        );
        samples.add(p.name, 'kibIdle', m.kibPerConnection);
        if (m.kibSettled !== undefined) samples.add(p.name, 'kibSettled', m.kibSettled);
        if (m.opened < s.gatewayIdle)
          notes.push(
            `${p.name}: only ${m.opened} of ${s.gatewayIdle} idle WebSockets opened (${m.firstError ?? ''})`,
          );
        log(
          `${p.name}: ${m.kibPerConnection.toFixed(1)} KiB per idle WebSocket, ${m.kibSettled?.toFixed(1) ?? '-'} KiB ${SETTLE_MS / 1000} s on (${m.opened} open, ${m.processes} processes)`,
        );
      });
    }
  }

  return {
    id: 'gateway',
    title: 'Gateway (issue 6): WebSocket reverse proxies in front of one ws echo server',
    reference: 'wsvia gateway',
    metrics: [
      { key: 'p50', label: 'setup p50', unit: 'ms', better: 'lower', digits: 2 },
      { key: 'p99', label: 'setup p99', unit: 'ms', better: 'lower', digits: 2 },
      { key: 'mbps', label: '64 KiB echo', unit: 'MB/s', better: 'higher', digits: 0 },
      { key: 'msgs', label: '32 B echo', unit: 'msgs/s', better: 'higher', digits: 0 },
      { key: 'cpuPerGb', label: 'CPU', unit: 's/GB', better: 'lower', digits: 2 },
      { key: 'kibIdle', label: 'idle WebSocket', unit: 'KiB', better: 'lower', digits: 1 },
      {
        key: 'kibSettled',
        label: `idle WebSocket, ${SETTLE_MS / 1000} s on`,
        unit: 'KiB',
        better: 'lower',
        digits: 1,
      },
    ],
    rows: contenders.map((c) => samples.row(c)),
    counts: [
      `setup: ${s.setupCount} sequential WebSockets (TCP connect + upgrade to open)`,
      `64 KiB echo: 2 WebSockets, 4 messages in flight each, ${s.echoSeconds} s; MB/s counts bytes echoed back; CPU s/GB = gateway CPU / GB relayed (both directions)`,
      `32 B echo: 8 WebSockets, 32 messages in flight each, ${s.echoSeconds} s`,
      `idle WebSocket: RSS delta over ${s.gatewayIdle} idle WebSockets in a fresh process, 1 s after the last opened and again ${SETTLE_MS / 1000} s later, against a baseline taken after 20 warm-up WebSockets and ${SETTLE_MS / 1000} s of quiet (the start-up's garbage collected, so no peer is credited with it; no GC forced; the targets use the first)`,
    ],
    notes,
    configs,
  };
}
