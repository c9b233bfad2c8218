/** The access log (src/observe/access-log.ts): checked at open, counted and reported on write errors, never thrown. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { WsviaError } from '../../src/errors.js';
import { AccessLog } from '../../src/observe/access-log.js';
import { Registry } from '../../src/observe/metrics.js';
import { until } from '../helpers/eventually.js';
import { tempDir } from '../helpers/process.js';

describe('AccessLog', () => {
  it('refuses a path in a missing directory at open, as CONFIG_INVALID naming it', () => {
    const file = path.join(tempDir(), 'missing', 'access.log');
    assert.throws(
      () => AccessLog.open(file),
      (e: unknown) => e instanceof WsviaError && e.code === 'CONFIG_INVALID' && e.message.includes(file),
    );
  });

  it('appends one JSON line per record to a file it opened', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'a.log');
    fs.writeFileSync(file, 'earlier\n');
    const log = AccessLog.open(file);
    log.write({ client: 'c', status: 200 });
    await log.close();
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines[0], 'earlier');
    assert.equal((JSON.parse(lines[1] as string) as { status: number }).status, 200);
    fs.rmSync(dir, { recursive: true, force: true });
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
    log.write({ n: 1 });
    await until('the error', () => log.failure !== undefined);
    log.write({ n: 2 });
    log.write({ n: 3 });
    assert.deepEqual(reported, ['ENOSPC']);
    assert.equal(log.errors, 3);
    assert.match(registry.render(), /^wsvia_access_log_errors_total 3$/m);
    await log.close();
  });

  it('on /dev/full (ENOSPC from the kernel) keeps accepting records', async () => {
    const log = AccessLog.open('/dev/full');
    log.write({ n: 1 });
    await until('the ENOSPC', () => log.failure !== undefined);
    assert.equal((log.failure as NodeJS.ErrnoException).code, 'ENOSPC');
    log.write({ n: 2 });
    assert.ok(log.errors >= 2);
    await log.close();
  });
});
