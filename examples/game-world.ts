/**
 * A small UDP game world built on the probe member library (seed 000). Clients are placed here
 * by the assigner (`usher run` with an `assigner` section, forward mode), then talk to this
 * process directly over the same UDP port:
 *
 *   client → world   {"x": 12, "y": 7}                                    a move (JSON datagram)
 *   world  → players {"type":"pos","player":"ana","x":12,"y":7}           to everyone in the same incarnation
 *   world  → players {"type":"left","player":"ana"}                        when a player leaves or times out
 *
 * Run:  node --import tsx examples/game-world.ts --port 7101 --id world-a
 *       [--host 127.0.0.1] [--app game] [--incarnations world-1,world-2] [--site local]
 *       [--assigner 127.0.0.1 ...] [--advertise HOST:PORT]
 *       [--peer HOST:PORT ... --relay-secret SECRET]
 * Try it: node bin/usher.js probe --balancer <assigner> --app game   (or the Node client SDK).
 *
 * Several sites (P0.9): give each world the worlds of the other sites as `--peer` (IP:PORT,
 * repeatable; every world lists every other one) and the same `--relay-secret` (at least 16
 * bytes; or USHER_RELAY_SECRET). Every position a world broadcasts then also goes to its peers,
 * which pass it on to their own players: players on different sites share one world.
 */
import { parseArgs } from 'node:util';
import { parseEndpoint } from '../src/probe/host-port.js';
import { type MemberSession, ProbeMember } from '../src/probe/member.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    id: { type: 'string', default: 'world-a' },
    host: { type: 'string', default: '127.0.0.1' },
    app: { type: 'string', default: 'game' },
    incarnations: { type: 'string', default: 'world-1,world-2' },
    site: { type: 'string', default: 'local' },
    assigner: { type: 'string', multiple: true },
    advertise: { type: 'string' },
    peer: { type: 'string', multiple: true },
    'relay-secret': { type: 'string' },
  },
});

const advertise = values.advertise?.match(/^(.+):(\d+)$/);
const peers = (values.peer ?? []).map((p) => parseEndpoint(p));
const relaySecret = values['relay-secret'] ?? process.env.USHER_RELAY_SECRET;
const world = new ProbeMember({
  id: values.id,
  app: values.app,
  site: values.site,
  incarnations: values.incarnations.split(',').filter(Boolean),
  host: values.host,
  port: Number(values.port),
  ...(values.assigner ? { assigners: values.assigner } : {}),
  ...(advertise ? { advertise: { address: advertise[1]!, port: Number(advertise[2]) } } : {}),
  ...(peers.length > 0 ? { peers } : {}),
  ...(relaySecret !== undefined ? { relaySecret } : {}),
});

/** Where each player stands, by session id. */
const positions = new Map<string, { x: number; y: number }>();
const name = (s: MemberSession) => s.user ?? s.id.slice(0, 8);

world.on('session', (s) => {
  positions.set(s.id, { x: 0, y: 0 });
  console.log(`${name(s)} joined ${s.incarnation} from ${s.endpoint.address}:${s.endpoint.port}`);
});

world.on('message', (s, data) => {
  let move: { x?: unknown; y?: unknown };
  try {
    move = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return; // not JSON: ignore it, as a game server ignores garbage
  }
  if (typeof move?.x !== 'number' || typeof move.y !== 'number') return;
  if (!Number.isFinite(move.x) || !Number.isFinite(move.y)) return;
  positions.set(s.id, { x: move.x, y: move.y });
  world.broadcast(s.incarnation, JSON.stringify({ type: 'pos', player: name(s), x: move.x, y: move.y }));
});

// A peer's broadcast has already gone to our players in that incarnation (never back: no loops).
const heardFrom = new Set<string>();
world.on('relay', (r) => {
  const who = `${r.member ?? '?'}@${r.site ?? '?'}`;
  if (heardFrom.has(who)) return;
  heardFrom.add(who);
  console.log(`relaying with ${who} (first in ${r.incarnation}, from ${r.from.address}:${r.from.port})`);
});

world.on('end', (s, reason) => {
  positions.delete(s.id);
  world.broadcast(s.incarnation, JSON.stringify({ type: 'left', player: name(s) }));
  console.log(`${name(s)} left ${s.incarnation} (${reason})`);
});

const bound = await world.start();
console.log(
  `game-world ${world.id} listening on ${bound.address}:${bound.port} (app ${values.app}, incarnations ${values.incarnations}, site ${values.site}${peers.length > 0 ? `, peers ${values.peer!.join(' ')}` : ''})`,
);

const stop = async () => {
  await world.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
