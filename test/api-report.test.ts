/** The public API report (api/wsvia.api.md) matches the built declarations: an API change is seen in review. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('api/wsvia.api.md is the public surface of the built index.d.ts (npm run api:update after a meant change)', () => {
  const r = spawnSync(process.execPath, ['scripts/api-report.mjs', '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
