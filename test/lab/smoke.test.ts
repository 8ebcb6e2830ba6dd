/**
 * Smoke test of the network lab: routed hops (IPv4 and IPv6), nginx inside a namespace, a NAT,
 * a hub bridge, and the lab's own hygiene (teardown, sweeping crashed runs).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLab, type Host, isAlive, type Lab, LabProcess, labAvailable, listNamespaces } from './lab.js';
import { MARKER_DIR } from './sweep.js';

const skip = labAvailable('ping', 'curl', 'nginx', 'nft', 'socat', 'unshare');
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

async function nginx(host: Host, listen: string[], files: Record<string, string>) {
  const dir = await mkdtemp(join(tmpdir(), 'usher-lab-nginx-'));
  await mkdir(join(dir, 'www'));
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, 'www', name), body);
  const conf = `
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
${listen.map((l) => `    listen ${l};`).join('\n')}
    root ${dir}/www;
  }
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  const proc = host.spawn('nginx', [
    '-e',
    'stderr',
    '-p',
    dir,
    '-c',
    join(dir, 'nginx.conf'),
    '-g',
    'daemon off;',
  ]);
  await proc.waitForPort(80);
  return { proc, dir, accessLog: () => readFile(join(dir, 'access.log'), 'utf8') };
}

/** Packets counted by the first `counter` of an nftables chain. */
async function counter(host: Host, family: string, table: string, chain: string): Promise<number> {
  const { stdout } = await host.exec('nft', ['list', 'chain', family, table, chain]);
  const m = /counter packets (\d+)/.exec(stdout);
  assert.ok(m, `no counter in ${host.name}'s chain ${table}/${chain}:\n${stdout}`);
  return Number(m[1]);
}

/** The root namespace's links, addresses and routes, without lifetimes or counters. */
async function rootSnapshot(): Promise<string> {
  const json = async (args: string[]) =>
    JSON.parse((await runRoot('ip', ['-j', ...args])).trim() || '[]') as Record<string, unknown>[];
  const links = (await json(['link'])).map((l) => `${l.ifname} ${l.link_type} ${l.address}`);
  const addrs = (await json(['addr'])).flatMap((l) =>
    ((l.addr_info ?? []) as Record<string, unknown>[]).map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`),
  );
  const routes = [...(await json(['route'])), ...(await json(['-6', 'route']))].map(
    (r) => `${r.dst} ${r.gateway ?? ''} ${r.dev ?? ''}`,
  );
  return [...links, ...addrs, ...routes].sort().join('\n');
}

/** Runs a read-only command in the root namespace (used only to observe it). */
function runRoot(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}`))));
  });
}

/** Polls until none of `pids` is a live process, or fails at the deadline. */
async function allDead(pids: number[], timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive)) {
    if (Date.now() > deadline)
      assert.fail(`still alive after ${timeoutMs} ms: ${pids.filter(isAlive).join(' ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function newLab(t: { after: (fn: () => Promise<void>) => void }): Promise<Lab> {
  const lab = await createLab();
  t.after(() => lab.close());
  return lab;
}

describe('network lab', { skip }, () => {
  it('routes client → router → server, IPv4 and IPv6, and curl fetches a file from nginx', async (t) => {
    const lab = await newLab(t);
    const [client, router, server] = await Promise.all([
      lab.host('client'),
      lab.host('router'),
      lab.host('server'),
    ]);
    await lab.link(client, router, {
      a: ['10.200.1.2/24', 'fd00:7573:1::2/64'],
      b: ['10.200.1.1/24', 'fd00:7573:1::1/64'],
    });
    await lab.link(router, server, {
      a: ['10.200.2.1/24', 'fd00:7573:2::1/64'],
      b: ['10.200.2.2/24', 'fd00:7573:2::2/64'],
    });
    await router.router();
    await Promise.all([
      client.defaultRoute('10.200.1.1'),
      client.defaultRoute('fd00:7573:1::1'),
      server.defaultRoute('10.200.2.1'),
      server.defaultRoute('fd00:7573:2::1'),
    ]);

    // One router on the way: the reply arrives with its TTL / hop limit decremented once.
    const v4 = await client.exec('ping', ['-n', '-c', '1', '-W', '5', server.addr()]);
    assert.match(v4.stdout, /from 10\.200\.2\.2: icmp_seq=1 ttl=63/);
    const v6 = await client.exec('ping', ['-n', '-6', '-c', '1', '-W', '5', server.addr('eth0', 6)]);
    assert.match(v6.stdout, /from fd00:7573:2::2: icmp_seq=1 ttl=63/);

    const body = `hello from ${server.ns}\n`;
    const web = await nginx(server, ['10.200.2.2:80', '[fd00:7573:2::2]:80'], { 'hello.txt': body });
    t.after(() => rm(web.dir, { recursive: true, force: true }));
    const curl = (url: string) => client.exec('curl', ['-sS', '--max-time', '10', url]);
    assert.equal((await curl('http://10.200.2.2/hello.txt')).stdout, body);
    assert.equal((await curl('http://[fd00:7573:2::2]/hello.txt')).stdout, body);
    // Routed, not translated: nginx saw the client's own addresses.
    const log = await web.accessLog();
    assert.match(log, /^10\.200\.1\.2 .*"GET \/hello\.txt HTTP\/1\.1" 200/m);
    assert.match(log, /^fd00:7573:1::2 .*"GET \/hello\.txt HTTP\/1\.1" 200/m);
    // A missing file is an HTTP error, and exec says so when asked to reject.
    await assert.rejects(
      client.exec('curl', ['-sSf', '--max-time', '10', 'http://10.200.2.2/missing']),
      /client: `.*curl .*` exited with code 22: .*404/,
    );
  });

  it('a NAT host masquerades: the server sees the NAT’s outside address', async (t) => {
    const lab = await newLab(t);
    const [client, nat, server] = await Promise.all([
      lab.host('client'),
      lab.host('nat'),
      lab.host('server'),
    ]);
    await lab.link(client, nat, { a: '10.200.3.2/24', b: '10.200.3.1/24' });
    const outside = await lab.link(nat, server, { a: '10.200.4.1/24', b: '10.200.4.2/24' });
    await client.defaultRoute('10.200.3.1');
    await nat.router();
    // The server has no route back to the client's network: only translated traffic gets answers.
    const before = await client.exec('ping', ['-n', '-c', '1', '-W', '1', '10.200.4.2'], { reject: false });
    assert.notEqual(before.code, 0, 'without NAT the server cannot answer');

    await nat.masquerade(outside.a.ifname);
    const echo = server.spawn('socat', ['TCP-LISTEN:7000,reuseaddr,fork', 'SYSTEM:echo $SOCAT_PEERADDR']);
    await echo.waitForPort(7000);
    const seen = await client.exec('socat', ['-T', '5', '-', 'TCP:10.200.4.2:7000,connect-timeout=5']);
    assert.equal(seen.stdout.trim(), nat.addr(outside.a.ifname));
    assert.equal(seen.stdout.trim(), '10.200.4.1');
  });

  it('a hub bridge floods unicast frames to every port; hosts sharing a MAC all receive', async (t) => {
    const lab = await newLab(t);
    const hub = await lab.bridge('hub', { hub: true });
    const [a, b, c, d, e] = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => lab.host(n)));
    await lab.attach(a!, hub, { addr: '10.200.5.1/24', mac: '02:00:00:00:05:01' });
    await lab.attach(b!, hub, { addr: '10.200.5.2/24', mac: '02:00:00:00:05:02' });
    await lab.attach(c!, hub, { addr: '10.200.5.3/24', mac: '02:00:00:00:05:03' });
    // d and e share one MAC and one address, as seed 002's members do.
    await lab.attach(d!, hub, { addr: '10.200.5.100/24', mac: '02:00:5e:72:00:64' });
    await lab.attach(e!, hub, { addr: '10.200.5.100/24', mac: '02:00:5e:72:00:64' });

    // c counts frames addressed to b's MAC at ingress (before the stack drops them as not its own).
    await c!.nft(`table netdev obs {
  chain in {
    type filter hook ingress device "eth0" priority 0; policy accept;
    ether daddr 02:00:00:00:05:02 counter
  }
}
`);
    const echoRequests = `table ip obs {
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    icmp type echo-request counter
  }
}
`;
    await Promise.all([d!.nft(echoRequests), e!.nft(echoRequests)]);

    await a!.exec('ping', ['-n', '-c', '3', '-i', '0.05', '-W', '5', '10.200.5.2']);
    assert.ok((await counter(c!, 'netdev', 'obs', 'in')) >= 3, 'c saw the echo requests sent to b');

    const dup = await a!.exec('ping', ['-n', '-c', '3', '-i', '0.05', '-W', '5', '10.200.5.100'], {
      reject: false,
    });
    assert.ok((await counter(d!, 'ip', 'obs', 'pre')) >= 3, `d got every echo request:\n${dup.stdout}`);
    assert.ok((await counter(e!, 'ip', 'obs', 'pre')) >= 3, `e got every echo request:\n${dup.stdout}`);
    assert.match(dup.stdout, /DUP!/, 'both answered');
  });

  it('a learning bridge (not a hub) does not flood frames once it knows the MAC', async (t) => {
    const lab = await newLab(t);
    const sw = await lab.bridge('switch');
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => lab.host(n)));
    await lab.attach(a!, sw, { addr: '10.200.6.1/24', mac: '02:00:00:00:06:01' });
    await lab.attach(b!, sw, { addr: '10.200.6.2/24', mac: '02:00:00:00:06:02' });
    await lab.attach(c!, sw, { addr: '10.200.6.3/24', mac: '02:00:00:00:06:03' });
    await c!.nft(`table netdev obs {
  chain in {
    type filter hook ingress device "eth0" priority 0; policy accept;
    ether daddr 02:00:00:00:06:02 counter
  }
}
`);
    await a!.exec('ping', ['-n', '-c', '3', '-i', '0.05', '-W', '5', '10.200.6.2']);
    assert.equal(await counter(c!, 'netdev', 'obs', 'in'), 0, 'c saw none of the frames for b');
  });

  it('close() removes every namespace, veth and process of the run, and nothing else', async () => {
    const rootBefore = await rootSnapshot();
    const lab = await createLab();
    try {
      const [x, y] = await Promise.all([lab.host('x'), lab.host('y')]);
      const br = await lab.bridge('br');
      await lab.link(x, y, {
        a: ['10.200.7.1/24', 'fd00:7573:7::1/64'],
        b: ['10.200.7.2/24', 'fd00:7573:7::2/64'],
      });
      await lab.attach(x, br, { addr: '10.200.8.1/24' });
      await lab.attach(y, br, { addr: '10.200.8.2/24' });
      const sleeper = x.spawn('sleep', ['1000']);
      const shell = y.spawn('sh', ['-c', 'sleep 1000 & echo $!; wait']);
      const grandchild = Number(await shell.waitForLine(/^\d+$/));
      const pids = [sleeper.pid, shell.pid, grandchild];
      assert.ok(pids.every(isAlive));
      assert.deepEqual(
        listNamespaces()
          .filter((n) => n.startsWith(lab.prefix))
          .sort(),
        lab.namespaces().sort(),
      );
      assert.ok(existsSync(`${MARKER_DIR}/${lab.id}.json`));

      await lab.close();
      await lab.close(); // twice is harmless

      assert.deepEqual(
        listNamespaces().filter((n) => n.startsWith(lab.prefix)),
        [],
      );
      await allDead(pids);
      assert.deepEqual(lab.pids(), []);
      assert.equal(existsSync(`${MARKER_DIR}/${lab.id}.json`), false);
      assert.throws(() => x.spawn('true'), /already closed/);
      // Veths lived only inside the lab's namespaces: the root namespace is exactly as before.
      assert.equal(await rootSnapshot(), rootBefore);
    } finally {
      await lab.close();
    }
  });

  it('a new lab sweeps what crashed runs left, and leaves live runs alone', async (t) => {
    const live = await newLab(t);
    await live.host('alive');

    // 1. A run killed with SIGKILL: no exit handler ran, its namespaces and processes remain.
    const crashed = new LabProcess(
      spawn(process.execPath, ['--import', 'tsx', 'test/lab/fixtures/crashed-run.ts'], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
      'crashed run',
    );
    t.after(() => crashed.stop('SIGKILL'));
    const left = JSON.parse(await crashed.waitForLine(/^\{/, { timeoutMs: 30_000 })) as {
      prefix: string;
      namespaces: string[];
      pids: number[];
    };
    assert.ok(left.pids.every(isAlive));
    assert.deepEqual(
      listNamespaces()
        .filter((n) => n.startsWith(left.prefix))
        .sort(),
      left.namespaces.sort(),
    );
    await crashed.stop('SIGKILL');

    // 2. A namespace with our prefix made by hand, holding a veth pair and a process, no marker.
    let handId: string;
    do handId = `z${Math.random().toString(36).slice(2, 5).padEnd(3, '0')}`;
    while (
      listNamespaces().some((n) => n.startsWith(`ul${handId}-`)) ||
      existsSync(`${MARKER_DIR}/${handId}.json`)
    );
    const handNs = `ul${handId}-byhand`;
    const holder = new LabProcess(
      spawn(
        'unshare',
        ['-n', 'sh', '-c', 'ip link add v0 type veth peer name v1 && echo ready && exec sleep 1000'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      ),
      'hand-made namespace',
    );
    t.after(() => holder.stop('SIGKILL'));
    await holder.waitForLine('ready');
    await runRoot('ip', ['netns', 'attach', handNs, String(holder.pid)]);

    const lab = await newLab(t);
    assert.notEqual(lab.prefix, left.prefix);
    const names = listNamespaces();
    assert.deepEqual(
      names.filter((n) => n.startsWith(left.prefix) || n === handNs),
      [],
      'leftovers swept',
    );
    await allDead([...left.pids, holder.pid]);
    assert.ok(names.includes(`${live.prefix}alive`), 'the live run keeps its namespace');
    assert.equal(existsSync(`${MARKER_DIR}/${left.prefix.slice(2, 6)}.json`), false);
  });
});
