import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sessionToPcapng } from '../../src/bridge/pcapng.js';
import { tempDir } from '../helpers/process.js';

const session = {
  header: {
    type: 'session',
    start: '2026-11-26T10:00:00.000Z',
    client: '127.0.0.1:50000',
    target: '127.0.0.1:22',
  },
  chunks: [
    { t: 1.5, dir: 'down' as const, data: Buffer.from('SSH-2.0-test\r\n') },
    { t: 2.25, dir: 'up' as const, data: Buffer.from('SSH-2.0-client\r\n') },
    { t: 3, dir: 'up' as const, data: randomBytes(70_000) }, // more than one IPv4 packet
  ],
  end: { type: 'end', t: 10, closed_by: 'client' },
};

/** Walks the blocks: every block's two length fields agree and the file ends on a block boundary. */
function blocks(b: Buffer): number[] {
  const types: number[] = [];
  let off = 0;
  while (off < b.length) {
    const len = b.readUInt32LE(off + 4);
    assert.ok(len >= 12 && len % 4 === 0 && off + len <= b.length, `block at ${off}`);
    assert.equal(b.readUInt32LE(off + len - 4), len);
    types.push(b.readUInt32LE(off));
    off += len;
  }
  return types;
}

describe('recordings as pcapng', () => {
  it('writes a section, an interface and one packet per segment, with consistent block lengths', () => {
    const types = blocks(sessionToPcapng(session));
    assert.deepEqual(types.slice(0, 2), [0x0a0d0d0a, 1]);
    // SYN, SYN-ACK, ACK, 4 data segments (70,000 bytes take two), FIN, FIN.
    assert.equal(types.filter((t) => t === 6).length, 3 + 4 + 2);
  });

  it('tshark reads it back: the TCP stream holds the recorded bytes in order, checksums valid', () => {
    const dir = tempDir();
    const file = path.join(dir, 's.pcapng');
    fs.writeFileSync(file, sessionToPcapng(session));
    const follow = execFileSync('tshark', ['-r', file, '-q', '-z', 'follow,tcp,raw,0'], { encoding: 'utf8' });
    const lines = follow.split('\n').filter((l) => /^\s*[0-9a-f]+$/.test(l));
    // tshark indents the server's side with a tab.
    const down = lines
      .filter((l) => l.startsWith('\t'))
      .join('')
      .replace(/\s/g, '');
    const up = lines.filter((l) => !l.startsWith('\t')).join('');
    assert.equal(Buffer.from(down, 'hex').toString(), 'SSH-2.0-test\r\n');
    assert.ok(
      Buffer.from(up, 'hex').equals(Buffer.concat([session.chunks[1]!.data, session.chunks[2]!.data])),
    );
    const bad = execFileSync(
      'tshark',
      [
        '-r',
        file,
        '-o',
        'tcp.check_checksum:TRUE',
        '-o',
        'ip.check_checksum:TRUE',
        '-Y',
        'tcp.checksum.status == 2 || ip.checksum.status == 2',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(bad.trim(), '');
    const times = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.time_epoch'], {
      encoding: 'utf8',
    });
    const epoch = Date.parse(session.header.start) / 1000;
    assert.deepEqual(
      times
        .trim()
        .split('\n')
        .map((t) => Math.round((Number(t) - epoch) * 1e6) / 1e3),
      [0, 0, 0, 1.5, 2.25, 3, 3, 10, 10],
    );
    fs.rmSync(dir, { recursive: true });
  });
});
