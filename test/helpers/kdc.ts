/**
 * An MIT Kerberos KDC on loopback (krb5-kdc from Debian) with its own realm, database, keytab and ticket cache,
 * all in a temp dir: the environment variables (KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5CCNAME) point into it, so
 * /etc/krb5.conf is never read or touched. Started with test/helpers/process.ts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, startPeer, tempDir } from './process.js';

export interface RunningKdc {
  readonly realm: string;
  readonly dir: string;
  /** KRB5_CONFIG, KRB5_KDC_PROFILE and KRB5CCNAME pointing into the temp dir. */
  readonly env: NodeJS.ProcessEnv;
  /** The keytab holding `HTTP/localhost`'s key, for the proxy. */
  readonly keytab: string;
  /** `HTTP/localhost@REALM`. */
  readonly servicePrincipal: string;
  /** `kinit user` with its password on stdin, into the temp dir's ticket cache. */
  kinit(user: string, password: string): void;
  /** `kdestroy`: the cache is gone, as before any kinit. */
  kdestroy(): void;
  stop(): Promise<void>;
}

export async function startKdc(
  o: { realm?: string; users?: Readonly<Record<string, string>> } = {},
): Promise<RunningKdc> {
  const realm = o.realm ?? 'WSVIA.TEST';
  const users = o.users ?? { alice: 'wonderland' };
  const dir = tempDir('wsvia-kdc-');
  const port = await freePort();
  fs.writeFileSync(
    path.join(dir, 'krb5.conf'),
    [
      '[libdefaults]',
      ` default_realm = ${realm}`,
      ' dns_lookup_kdc = false',
      ' dns_lookup_realm = false',
      // No reverse lookup of `localhost`: the service name stays HTTP/localhost.
      ' rdns = false',
      ' dns_canonicalize_hostname = false',
      ' udp_preference_limit = 1',
      '[realms]',
      ` ${realm} = {`,
      `  kdc = 127.0.0.1:${port}`,
      ' }',
      '[domain_realm]',
      ` localhost = ${realm}`,
      ` 127.0.0.1 = ${realm}`,
      '',
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, 'kdc.conf'),
    [
      '[kdcdefaults]',
      ` kdc_ports = ${port}`,
      ` kdc_tcp_ports = ${port}`,
      '[realms]',
      ` ${realm} = {`,
      `  database_name = ${dir}/principal`,
      `  key_stash_file = ${dir}/stash`,
      `  acl_file = ${dir}/kadm5.acl`,
      ' }',
      '[logging]',
      ` kdc = FILE:${dir}/kdc.log`,
      '',
    ].join('\n'),
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KRB5_CONFIG: path.join(dir, 'krb5.conf'),
    KRB5_KDC_PROFILE: path.join(dir, 'kdc.conf'),
    KRB5CCNAME: `FILE:${path.join(dir, 'ccache')}`,
  };
  const keytab = path.join(dir, 'http.keytab');
  const servicePrincipal = `HTTP/localhost@${realm}`;
  const run = (cmd: string, args: string[], input?: string): void => {
    execFileSync(cmd, args, { env, input: input ?? '', stdio: ['pipe', 'ignore', 'pipe'] });
  };
  run('kdb5_util', ['-r', realm, 'create', '-s', '-P', 'master-pw']);
  for (const [u, p] of Object.entries(users))
    run('kadmin.local', ['-r', realm, '-q', `addprinc -pw ${p} ${u}`]);
  run('kadmin.local', ['-r', realm, '-q', `addprinc -randkey HTTP/localhost`]);
  run('kadmin.local', ['-r', realm, '-q', `ktadd -k ${keytab} HTTP/localhost`]);
  const peer = await startPeer('krb5kdc', ['-n', '-r', realm], { port, env, timeoutMs: 30_000 });
  return {
    realm,
    dir,
    env,
    keytab,
    servicePrincipal,
    kinit: (user, password) => run('kinit', [user], `${password}\n`),
    kdestroy: () => run('kdestroy', []),
    stop: async () => {
      await peer.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
