import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Credentials } from '../../src/auth/credentials.js';
import {
  fileTime,
  ntHash,
  ntlmAuthenticate,
  ntlmNegotiate,
  ntlmV2Responses,
  parseNtlmChallenge,
  splitNtlmUser,
} from '../../src/auth/ntlm.js';
import { isWsviaError } from '../../src/errors.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// [MS-NLMP] §4.2.1 common values and §4.2.4 NTLMv2 authentication.
const SERVER_CHALLENGE = hex('0123456789abcdef');
const CLIENT_CHALLENGE = hex('aaaaaaaaaaaaaaaa');
const AV_PAIRS = hex('02000c0044006f006d00610069006e00 01000c0053006500720076006500720000000000');
const CHALLENGE_MESSAGE = hex(
  '4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044000000060070170000000f5300650072007600650072000200 0c0044006f006d00610069006e0001000c0053006500720076006500720000000000',
);

describe('NTLM (MS-NLMP)', () => {
  it('the NT hash of "Password" is the spec value (MD4 from hash-wasm)', async () => {
    assert.equal((await ntHash('Password')).toString('hex'), 'a4f49c406510bdcab6824ee7c30fd852');
  });

  it('NTLMv2 and LMv2 responses match the §4.2.4 known answers', async () => {
    const r = ntlmV2Responses({
      user: 'User',
      domain: 'Domain',
      ntHash: await ntHash('Password'),
      serverChallenge: SERVER_CHALLENGE,
      clientChallenge: CLIENT_CHALLENGE,
      timestamp: 0n,
      targetInfo: AV_PAIRS,
    });
    assert.equal(r.key.toString('hex'), '0c868a403bfd7a93a3001ef22ef02e3f');
    assert.equal(r.nt.subarray(0, 16).toString('hex'), '68cd0ab851e51c96aabc927bebef6a1c');
    assert.equal(r.lm.toString('hex'), '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa');
  });

  it('parses the §4.2.4.3 CHALLENGE message', () => {
    const c = parseNtlmChallenge(CHALLENGE_MESSAGE.toString('base64'));
    assert.deepEqual(Buffer.from(c.serverChallenge), SERVER_CHALLENGE);
    assert.equal(c.targetName, 'Server');
    assert.deepEqual(Buffer.from(c.targetInfo), AV_PAIRS);
  });

  it('builds NEGOTIATE and AUTHENTICATE messages with the right shape', async () => {
    const n = Buffer.from(ntlmNegotiate().slice(5), 'base64');
    assert.equal(n.subarray(0, 8).toString('latin1'), 'NTLMSSP\0');
    assert.equal(n.readUInt32LE(8), 1);
    const c = parseNtlmChallenge(CHALLENGE_MESSAGE.toString('base64'));
    const a = Buffer.from(
      (
        await ntlmAuthenticate(c, new Credentials('Domain\\User', 'Password'), {
          random: () => CLIENT_CHALLENGE,
          now: () => 0,
        })
      ).slice(5),
      'base64',
    );
    assert.equal(a.readUInt32LE(8), 3);
    const ntLen = a.readUInt16LE(20);
    const ntOff = a.readUInt32LE(24);
    const userLen = a.readUInt16LE(36);
    const userOff = a.readUInt32LE(40);
    assert.equal(a.subarray(userOff, userOff + userLen).toString('utf16le'), 'User');
    assert.equal(ntLen, 16 + 28 + AV_PAIRS.length + 4);
    assert.ok(!a.includes(Buffer.from('Password', 'utf16le')), 'the password is not in the message');
    assert.ok(ntOff >= 64);
  });

  it("accepts squid's fake helper challenge: a target name pointing nowhere, no target info", () => {
    const c = parseNtlmChallenge('TlRMTVNTUAACAAAACQAJAK6qqqoHggiiT2QLiISoxMQAAAAAAAA6AFdPUktHUk9VUA==');
    assert.equal(c.targetName, '');
    assert.equal(c.targetInfo.length, 0);
    assert.equal(Buffer.from(c.serverChallenge).toString('hex'), '4f640b8884a8c4c4');
  });

  it('user names: DOMAIN\\user, user@domain, bare', () => {
    assert.deepEqual(splitNtlmUser('CORP\\alice'), ['alice', 'CORP']);
    assert.deepEqual(splitNtlmUser('alice@corp.example'), ['alice', 'corp.example']);
    assert.deepEqual(splitNtlmUser('alice'), ['alice', '']);
  });

  it('FILETIME counts 100 ns since 1601', () => {
    assert.equal(fileTime(0), 116444736000000000n);
  });

  it('a truncated or lying CHALLENGE is a PROTOCOL_ERROR, whole or cut at any byte, or with trailing bytes', () => {
    for (let i = 0; i < CHALLENGE_MESSAGE.length; i++) {
      const cut = CHALLENGE_MESSAGE.subarray(0, i).toString('base64');
      try {
        parseNtlmChallenge(cut === '' ? 'AA==' : cut);
      } catch (e) {
        assert.ok(isWsviaError(e));
        assert.equal(e.code, 'PROTOCOL_ERROR');
      }
    }
    const trailing = Buffer.concat([CHALLENGE_MESSAGE, Buffer.from('tail')]);
    assert.equal(parseNtlmChallenge(trailing.toString('base64')).targetName, 'Server');
  });

  it('any token either parses or throws a WsviaError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('base64')),
          fc
            .uint8Array({ maxLength: 100 })
            .map((b) => Buffer.concat([CHALLENGE_MESSAGE.subarray(0, 40), b]).toString('base64')),
        ),
        (token) => {
          try {
            parseNtlmChallenge(token);
          } catch (e) {
            assert.ok(isWsviaError(e), String(e));
          }
        },
      ),
    );
  });
});
