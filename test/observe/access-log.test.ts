/** The access log (src/observe/access-log.ts): checked at open, counted and reported on write errors, never thrown. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { WsviaError } from '../../src/errors.js';
import {
  ACCESS_LOG_KEYS,
  AccessLog,
  refusedEntry,
  type AccessLogEntry,
} from '../../src/observe/access-log.js';
import { Registry } from '../../src/observe/metrics.js';
import { until } from '../helpers/eventually.js';
import { tempDir } from '../helpers/process.js';

const ENTRY: AccessLogEntry = refusedEntry({
  client: '127.0.0.1:5000',
  method: 'CONNECT',
  target: 'example.test:443',
  status: 403,
  error: 'destination_denied',
  duration_ms: 1.6,
});

describe('AccessLog', () => {
  it('refuses a path in a missing directory at open, as CONFIG_INVALID naming it', () => {
    const file = path.join(tempDir(), 'missing', 'access.log');
    assert.throws(
      () => AccessLog.open(file),
      (e: unknown) => e instanceof WsviaError && e.code === 'CONFIG_INVALID' && e.message.includes(file),
    );
  });

  it('appends one JSON line per entry to a file it opened: every key of the schema, in order, duration rounded', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, 'earlier\n');
    const log = AccessLog.open(file);
    log.write(ENTRY);
    await log.close();
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines[0], 'earlier');
    const line = JSON.parse(lines[1] as string) as Record<string, unknown>;
    assert.deepEqual(Object.keys(line), [...ACCESS_LOG_KEYS]);
    assert.match(line['time'] as string, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual({ ...line, time: 0 }, { time: 0, ...ENTRY, duration_ms: 2 });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('with batch (what open() sets), writes the lines of one event-loop turn in one write; close() writes what is pending', async () => {
    const writes: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        writes.push(chunk.toString());
        cb();
      },
    });
    const log = new AccessLog(sink, { batch: true });
    for (let i = 0; i < 3; i++) log.write(ENTRY);
    await until('the batch written', () => writes.length > 0);
    assert.equal(writes.length, 1);
    assert.equal(writes[0]?.split('\n').filter((l) => l !== '').length, 3);
    log.write(ENTRY);
    await log.close();
    assert.equal(writes.length, 2);
    assert.equal((JSON.parse(writes[1] as string) as { status: number }).status, 403);
  });

  it('counts write errors and the lines lost after them in /metrics, reports the first once, never throws', async () => {
    const failing = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }));
      },
    });
    const reported: string[] = [];
    const log = new AccessLog(failing, {
      onError: (e) => reported.push((e as NodeJS.ErrnoException).code ?? ''),
    });
    const registry = new Registry();
    log.countInto(registry);
    log.write(ENTRY);
    await until('the error', () => log.failure !== undefined);
    log.write(ENTRY);
    log.write(ENTRY);
    assert.deepEqual(reported, ['ENOSPC']);
    assert.equal(log.errors, 3);
    assert.match(registry.render(), /^wsvia_access_log_errors_total 3$/m);
    await log.close();
  });

  it('on /dev/full (ENOSPC from the kernel) keeps accepting records', async () => {
    const log = AccessLog.open('/dev/full');
    log.write(ENTRY);
    await until('the ENOSPC', () => log.failure !== undefined);
    assert.equal((log.failure as NodeJS.ErrnoException).code, 'ENOSPC');
    log.write(ENTRY);
    assert.ok(log.errors >= 2);
    await log.close();
  });
});
