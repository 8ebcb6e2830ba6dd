/**
 * Running `nft` (optionally inside a network namespace) with a script on its stdin. The only
 * I/O of the cluster filter; everything else in `nft-filter.ts` is pure text.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, join } from 'node:path';
import { InvalidArgumentError, UsherError } from '../errors.js';

/** What a command left behind. */
export interface NftRunResult {
  /** Exit status (128 + signal number when killed by a signal). */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `argv` with `input` on its stdin; resolves once it exited (never rejects on a non-zero exit). */
export type NftExec = (argv: readonly string[], input: string) => Promise<NftRunResult>;

export interface NftRunOptions {
  /** Network namespace (as `ip netns` names it) to run `nft` in; default: the current one. */
  netns?: string;
  /** Replaces the process runner (tests, or a runner that tracks its children). */
  exec?: NftExec;
}

/**
 * `nft` refused a script or could not be run. Nothing was changed: an `nft -f` run is one
 * transaction. (Belongs in `src/errors.ts` with the other kinds once that file is open to us.)
 */
export class NftCommandError extends UsherError {
  readonly stderr: string;
  readonly exitCode: number;
  constructor(what: string, result: NftRunResult) {
    const detail = result.stderr.trim() || result.stdout.trim() || '(no output)';
    super('USHER_ERR_NFT_COMMAND', `${what}: nft exited with code ${result.code}: ${detail}`);
    this.stderr = result.stderr;
    this.exitCode = result.code;
  }
}

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];

/** `cmd` found on the PATH or in the sbin directories a non-login root shell may lack. */
function resolveCommand(cmd: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN];
  for (const dir of dirs) {
    const path = join(dir, cmd);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return cmd; // spawn will fail with ENOENT, reported as exit code 127
}

/** The default runner: spawns `argv` directly (no shell), feeds `input`, collects output. */
export const spawnExec: NftExec = (argv, input) =>
  new Promise((resolve) => {
    const [cmd, ...args] = argv;
    const child = spawn(resolveCommand(cmd ?? ''), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.stdin.on('error', () => {}); // it may exit without reading; its status tells
    child.stdin.end(input);
    child.on('error', (err) => resolve({ code: 127, stdout, stderr: `${stderr}${err.message}` }));
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : -1), stdout, stderr }),
    );
  });

const NETNS = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}$/;

/** `nft <args>` (inside `netns` if given) with `input` on stdin; throws NftCommandError on failure. */
export async function runNft(
  args: readonly string[],
  input: string,
  what: string,
  options: NftRunOptions = {},
): Promise<NftRunResult> {
  const { netns } = options;
  if (netns !== undefined && (!NETNS.test(netns) || netns === '.' || netns === '..'))
    throw new InvalidArgumentError(`netns: expected a network namespace name, got ${JSON.stringify(netns)}`);
  // `ip netns exec` looks the command up on its own PATH, which may lack /usr/sbin: give it the path.
  const argv =
    netns === undefined ? ['nft', ...args] : ['ip', 'netns', 'exec', netns, resolveCommand('nft'), ...args];
  const result = await (options.exec ?? spawnExec)(argv, input);
  if (result.code !== 0) throw new NftCommandError(what, result);
  return result;
}
