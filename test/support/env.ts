/**
 * What the machine offers the test suites. Each helper returns `false` when the suite can
 * run, or a one-line reason to pass as `{ skip: reason }` to node:test.
 */
import { spawnSync } from 'node:child_process';

export function hasCommand(cmd: string): boolean {
  return (
    spawnSync('sh', ['-c', `command -v ${cmd} || test -x /usr/sbin/${cmd}`], { stdio: 'ignore' }).status === 0
  );
}

/** Reason to skip unless running as root on Linux (network namespaces, nftables). */
export function needsRoot(what: string): string | false {
  if (process.platform !== 'linux') return `${what}: needs Linux (this is ${process.platform})`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0)
    return `${what}: needs root (CI runs as root)`;
  return false;
}

/** Reason to skip unless every command is on the PATH. */
export function needsCommands(what: string, ...cmds: string[]): string | false {
  const missing = cmds.filter((c) => !hasCommand(c));
  if (missing.length === 0) return false;
  return `${what}: needs ${missing.join(', ')} (npm test installs them on Debian as root)`;
}

/** First reason among several, or false. */
export function firstReason(...reasons: (string | false)[]): string | false {
  return reasons.find((r) => r !== false) ?? false;
}
