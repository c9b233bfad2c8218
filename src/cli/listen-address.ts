/** The listen-address parser every command uses lives with the servers (serve/listen-address.ts). */
export { formatListen, parseListen, parsePort, type ListenAddress } from '../serve/listen-address.js';
