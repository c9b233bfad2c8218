/**
 * The relays every raw-tunnel test runs against (issue 15): the JavaScript relay and the native splice(2) relay.
 * Where the addon cannot load (not Linux, no binary), the splice variants are skipped with the reason, not dropped.
 */
import { spliceSupport, type RelayChoice } from '../../src/serve/splice-relay.js';

export const RELAYS: readonly ('js' | 'splice')[] = ['js', 'splice'];

/** `describe`/`test` options for `relay`: the splice variant is skipped, saying why, where it cannot run. */
export function relayOptions(relay: RelayChoice): { skip?: string } {
  const s = spliceSupport();
  return relay === 'js' || s.available ? {} : { skip: s.reason };
}
