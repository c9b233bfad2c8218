#!/usr/bin/env node
// pretest: the tests start real third-party peers (squid, tinyproxy, dante, nginx, HAProxy, websockify, mitmproxy,
// Chromium). Missing ones are installed from Debian's packages when running as root; otherwise this names exactly
// what is missing and fails. A test never skips because a peer is absent.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';

// binary -> Debian package
const PEERS = {
  '/usr/sbin/squid': 'squid',
  '/usr/bin/tinyproxy': 'tinyproxy',
  '/usr/sbin/danted': 'dante-server',
  '/usr/bin/microsocks': 'microsocks',
  '/usr/sbin/nginx': 'nginx',
  '/usr/sbin/haproxy': 'haproxy',
  '/usr/bin/websockify': 'websockify',
  '/usr/bin/mitmdump': 'mitmproxy',
  '/usr/bin/chromium': 'chromium',
  '/usr/bin/htpasswd': 'apache2-utils',
  '/usr/bin/openssl': 'openssl',
  '/usr/bin/python3': 'python3', // a listener with a full backlog: the connect-timeout test's black hole
  '/usr/bin/java': 'default-jdk-headless',
  '/usr/bin/tshark': 'tshark',
  // `wsvia completion zsh|fish` is checked by the shells themselves.
  '/usr/bin/zsh': 'zsh',
  '/usr/bin/fish': 'fish',
  // Negotiate (Kerberos): a KDC on loopback, kinit, and the GSS-API headers the optional kerberos package builds on.
  '/usr/sbin/krb5kdc': 'krb5-kdc',
  '/usr/sbin/kadmin.local': 'krb5-admin-server',
  '/usr/bin/kinit': 'krb5-user',
  '/usr/include/gssapi/gssapi_krb5.h': 'libkrb5-dev',
};

// The optional kerberos package builds at `npm ci` time, before this script can install libkrb5-dev: when its
// addon is missing, build it now (after the install below, or on a machine that had the headers all along).
function ensureKerberosAddon() {
  if (!fs.existsSync('node_modules/kerberos')) return;
  if (fs.existsSync('node_modules/kerberos/build/Release/kerberos.node')) return;
  console.error('ensure-peers: building the optional kerberos package against libkrb5-dev');
  const b = spawnSync('npm', ['rebuild', 'kerberos'], { stdio: 'inherit' });
  if (b.status !== 0) {
    console.error('ensure-peers: npm rebuild kerberos failed (the Negotiate tests need it)');
    process.exit(1);
  }
}

const missing = [
  ...new Set(
    Object.entries(PEERS)
      .filter(([bin]) => !fs.existsSync(bin))
      .map(([, pkg]) => pkg),
  ),
];
if (missing.length === 0) {
  ensureKerberosAddon();
  process.exit(0);
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot) {
  console.error(
    `ensure-peers: the tests need these Debian packages, which are missing: ${missing.join(' ')}`,
  );
  console.error(`install them with: sudo apt-get install -y ${missing.join(' ')}`);
  process.exit(1);
}
console.error(`ensure-peers: installing ${missing.join(' ')} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
  stdio: 'inherit',
  env,
});
if (r.status !== 0) {
  console.error(`ensure-peers: apt-get install failed for: ${missing.join(' ')}`);
  process.exit(1);
}
// Debian starts some daemons on install; the tests start their own on loopback ports.
for (const svc of ['squid', 'tinyproxy', 'nginx', 'haproxy', 'danted', 'krb5-kdc', 'krb5-admin-server']) {
  spawnSync('service', [svc, 'stop'], { stdio: 'ignore' });
}
const still = Object.entries(PEERS)
  .filter(([bin]) => !fs.existsSync(bin))
  .map(([, pkg]) => pkg);
if (still.length > 0) {
  console.error(`ensure-peers: still missing after install: ${still.join(' ')}`);
  process.exit(1);
}
ensureKerberosAddon();
