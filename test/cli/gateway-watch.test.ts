/**
 * `wsvia gateway --watch` keeps reloading after editor-style saves: each save writes a new file and renames it over
 * the config, which leaves a watch on the file itself following the old, unlinked inode.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, startPeer, tempDir, type Peer } from '../helpers/process.js';
import { until } from '../helpers/eventually.js';

const MAIN = path.resolve('dist/src/cli/main.js');

describe('wsvia gateway --watch', { timeout: 60_000 }, () => {
  let dir: string;
  let file: string;
  let admin: number;
  let peer: Peer;
  /** Writes the config as vim and Ansible do: a new file beside it, renamed over it. */
  const save = (routePath: string): void => {
    const tmp = path.join(dir, `.gateway.yaml.${routePath.slice(1)}.tmp`);
    fs.writeFileSync(
      tmp,
      `listen: 127.0.0.1:0\nadmin: 127.0.0.1:${admin}\nroutes:\n  - { path: ${routePath}, upstream: ws://127.0.0.1:9 }\n`,
    );
    fs.renameSync(tmp, file);
  };
  const routes = async (): Promise<string[]> => {
    const page = (await (await fetch(`http://127.0.0.1:${admin}/routes`)).json()) as {
      routes: { path: string }[];
    };
    return page.routes.map((r) => r.path);
  };
  before(async () => {
    dir = tempDir();
    file = path.join(dir, 'gateway.yaml');
    admin = await freePort();
    save('/zero');
    peer = await startPeer(process.execPath, [MAIN, 'gateway', '--config', file, '--watch'], { port: admin });
  });
  after(async () => {
    await peer.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reloads on each of three successive rename-over saves', async () => {
    assert.deepEqual(await routes(), ['/zero']);
    for (const [i, p] of ['/one', '/two', '/three'].entries()) {
      save(p);
      await until(
        `save ${i + 1} reloaded`,
        () => (peer.output().match(/reloaded \(file changed\)/g)?.length ?? 0) > i,
      );
      assert.deepEqual(await routes(), [p]);
    }
  });
});
