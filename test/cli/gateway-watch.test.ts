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
import { configSignature, ConfigWatch } from '../../src/cli/config-watch.js';

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

describe('wsvia gateway --watch on a Kubernetes ConfigMap volume', { timeout: 60_000 }, () => {
  let dir: string;
  let admin: number;
  let peer: Peer;
  let version = 0;
  /**
   * A ConfigMap update as the kubelet does it: the file is a symlink through `..data`, a symlink to a versioned
   * directory; a new version is written and a new `..data` link renamed over the old one. No event names the file.
   */
  const publish = (routePath: string): void => {
    const v = `..v${++version}`;
    fs.mkdirSync(path.join(dir, v));
    fs.writeFileSync(
      path.join(dir, v, 'gateway.yaml'),
      `listen: 127.0.0.1:0\nadmin: 127.0.0.1:${admin}\nroutes:\n  - { path: ${routePath}, upstream: ws://127.0.0.1:9 }\n`,
    );
    fs.symlinkSync(v, path.join(dir, '..data_tmp'));
    fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  };
  before(async () => {
    dir = tempDir();
    admin = await freePort();
    publish('/first');
    fs.symlinkSync('..data/gateway.yaml', path.join(dir, 'gateway.yaml'));
    peer = await startPeer(
      process.execPath,
      [MAIN, 'gateway', '--config', path.join(dir, 'gateway.yaml'), '--watch'],
      { port: admin },
    );
  });
  after(async () => {
    await peer.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reloads when the ..data link is swapped to a new version, twice', async () => {
    for (const [i, p] of ['/second', '/third'].entries()) {
      publish(p);
      await until(
        `update ${i + 1} reloaded`,
        () => (peer.output().match(/reloaded \(file changed\)/g)?.length ?? 0) > i,
      );
      const page = (await (await fetch(`http://127.0.0.1:${admin}/routes`)).json()) as {
        routes: { path: string }[];
      };
      assert.deepEqual(
        page.routes.map((r) => r.path),
        [p],
      );
    }
  });
});

describe('ConfigWatch: a save between reading the config and starting the watch', () => {
  it('is reported as a change, though it raised no event the watch could see', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'gateway.yaml');
    fs.writeFileSync(file, 'routes: []\n');
    // The gateway takes the signature, then reads the file; the save lands before its watch starts (CI under
    // load: the ConfigMap test waited 15 s for a reload that never came).
    const loaded = configSignature(file);
    fs.writeFileSync(`${file}.tmp`, 'routes: [] # saved while starting\n');
    fs.renameSync(`${file}.tmp`, file);
    let changes = 0;
    const watch = new ConfigWatch(file, () => changes++, loaded);
    try {
      await until('the change is reported', () => changes === 1);
    } finally {
      watch.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
