// Installs the Debian packages the test suites use, only when they are missing.
// Where that is impossible (not Linux, not root, no apt-get) it says so once; the suites
// that need a package then skip themselves with one line saying why (see test/support/env.ts).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** command the tests run -> Debian package that provides it */
export const NEEDED = {
  nginx: 'nginx',
  ping: 'iputils-ping',
  nft: 'nftables',
  chromium: 'chromium',
  curl: 'curl',
  ip: 'iproute2',
  socat: 'socat',
  etcd: 'etcd-server',
};

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function prepareTestEnv() {
  const missing = Object.entries(NEEDED).filter(([cmd]) => !has(cmd) && !existsSync(`/usr/sbin/${cmd}`));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))];
  if (process.env.USHER_NO_APT === '1') {
    console.log(`# USHER_NO_APT=1: not installing ${pkgs.join(' ')}; suites needing them will skip`);
    return;
  }
  if (
    process.platform !== 'linux' ||
    typeof process.getuid !== 'function' ||
    process.getuid() !== 0 ||
    !has('apt-get')
  ) {
    console.log(
      `# cannot install ${pkgs.join(' ')} (needs Linux, root and apt-get); suites needing them will skip`,
    );
    return;
  }
  console.log(`# installing Debian packages the tests use: ${pkgs.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { stdio: 'inherit', env });
  if (r.status !== 0)
    console.log(`# apt-get install failed (exit ${r.status}); suites needing ${pkgs.join(' ')} will skip`);
}
