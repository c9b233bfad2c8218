import type { Credentials } from './credentials.js';

/** RFC 7617: `Basic base64(user:pass)`, UTF-8 encoded. */
export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.user}:${credentials.reveal()}`, 'utf8').toString('base64')}`;
}
