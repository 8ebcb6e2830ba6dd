/**
 * `host:port` text ⇄ Endpoint, for operator input (`--balancer`) and SDK options. Pure and
 * isomorphic. Host names are kept as they are (the transport resolves them); an IPv6 address is
 * written in brackets.
 */
import { InvalidArgumentError } from '../errors.js';
import { parseAddress } from './address.js';
import type { Endpoint } from './messages.js';

/**
 * Parses `host:port`, `[v6]:port` or `{ address, port }`. Host names are allowed (the transport
 * resolves them). Throws InvalidArgumentError with what was expected.
 */
export function parseEndpoint(value: Endpoint | string): Endpoint {
  let address: string;
  let port: unknown;
  if (typeof value === 'string') {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim());
    if (!m)
      throw new InvalidArgumentError(`expected HOST:PORT (or [IPv6]:PORT), got ${JSON.stringify(value)}`);
    address = m[1] ?? m[2]!;
    port = Number(m[3]);
    if (m[1] !== undefined && parseAddress(address)?.family !== 6)
      throw new InvalidArgumentError(`expected an IPv6 address in brackets, got ${JSON.stringify(value)}`);
  } else {
    address = value?.address;
    port = value?.port;
  }
  if (typeof address !== 'string' || address === '')
    throw new InvalidArgumentError(`expected a host, got ${JSON.stringify(address)}`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new InvalidArgumentError(`expected a port 1..65535, got ${String(port)}`);
  return { address, port };
}

/** `host:port` text of an endpoint (`[v6]:port` for IPv6). */
export function formatEndpoint(endpoint: Endpoint): string {
  return endpoint.address.includes(':')
    ? `[${endpoint.address}]:${endpoint.port}`
    : `${endpoint.address}:${endpoint.port}`;
}
