/**
 * Running programs for the lab: one-shot commands (`execCommand`) and long-running processes
 * (`LabProcess`) whose output can be waited on, line by line, and whose ports can be polled.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { delimiter, join } from 'node:path';

export interface ExecResult {
  /** Exit status; 128 + signal number when the command was killed by a signal (like a shell). */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Reject on a non-zero exit (default true). With `false`, inspect `code` yourself. */
  reject?: boolean;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  /** Kill the command and reject after this long (default 30 s). */
  timeoutMs?: number;
  /** Extra environment variables (merged over the lab's environment). */
  env?: Record<string, string>;
  cwd?: string;
}

export interface SpawnProcessOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** `pipe` to write to `child.stdin` yourself; default `ignore`. */
  stdin?: 'ignore' | 'pipe';
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** Who keeps the list of running children so the lab can kill them on close. */
export interface ProcessTracker {
  track(child: ChildProcess): void;
}

export class LabExecError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly result: ExecResult | null,
  ) {
    super(message);
    this.name = 'LabExecError';
  }
}

const resolved = new Map<string, string>();
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];

/** Finds `cmd` on the PATH or in the sbin directories a non-login root shell may lack. */
export function resolveCommand(cmd: string): string {
  if (cmd.includes('/')) return cmd;
  const hit = resolved.get(cmd);
  if (hit) return hit;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const path = join(dir, cmd);
    try {
      accessSync(path, constants.X_OK);
      resolved.set(cmd, path);
      return path;
    } catch {
      // not here
    }
  }
  return cmd; // let exec fail with a clear ENOENT
}

/** Proxy variables would send curl & co. to a proxy that cannot exist inside a namespace. */
const PROXY_VARS = /^(https?|ftp|all|no)_proxy$/i;

export function labEnv(extra?: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!PROXY_VARS.test(k)) env[k] = v;
  return { ...env, ...extra };
}

export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

function tail(text: string, max = 600): string {
  const t = text.trim();
  return t.length <= max ? t : `...${t.slice(-max)}`;
}

function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal) return 128 + (osConstants.signals[signal] ?? 0);
  return -1;
}

export function debug(msg: string): void {
  if (process.env.USHER_LAB_DEBUG === '1') process.stderr.write(`[lab] ${msg}\n`);
}

/** Runs `argv` to completion; `label` names where it ran, for messages. */
export function execCommand(
  argv: string[],
  label: string,
  opts: ExecOptions,
  tracker: ProcessTracker | null,
  /** What messages show as the command (default: argv). */
  display: readonly string[] = argv,
): Promise<ExecResult> {
  const [cmd, ...args] = argv;
  const shown = `${label}: \`${formatCommand(display)}\``;
  debug(`exec ${shown}`);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const options: SpawnOptions = {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: labEnv(opts.env),
    };
    if (opts.cwd) options.cwd = opts.cwd;
    const child = spawn(resolveCommand(cmd!), args, options);
    tracker?.track(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}); // the command may exit without reading; its status tells
      child.stdin!.end(opts.input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new LabExecError(`${shown} could not start: ${err.message}`, formatCommand(display), null));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: ExecResult = { code: exitCode(code, signal), signal, stdout, stderr };
      if (timedOut) {
        reject(
          new LabExecError(
            `${shown} timed out after ${timeoutMs} ms; stderr: ${tail(stderr) || '(empty)'}`,
            formatCommand(display),
            result,
          ),
        );
      } else if (result.code !== 0 && opts.reject !== false) {
        const why = signal ? `was killed by ${signal}` : `exited with code ${result.code}`;
        const output = tail(stderr) || tail(stdout) || '(no output)';
        reject(new LabExecError(`${shown} ${why}: ${output}`, formatCommand(display), result));
      } else {
        resolve(result);
      }
    });
  });
}

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
}

export interface LineWaitOptions extends WaitOptions {
  stream?: 'stdout' | 'stderr' | 'any';
}

export interface PortWaitOptions extends WaitOptions {
  proto?: 'tcp' | 'udp';
}

interface Line {
  stream: 'stdout' | 'stderr';
  text: string;
}

const MAX_LINES = 10_000;
const MAX_TEXT = 1 << 20;
const POLL_MS = 25;

/** A long-running program inside a lab host; the lab kills it on close if it still runs. */
export class LabProcess {
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>;
  #exit: ProcessExit | null = null;
  /** Resolves when stdout and stderr are closed: all output has been read. */
  #closed: Promise<void>;
  #text = { stdout: '', stderr: '' };
  #partial = { stdout: '', stderr: '' };
  #lines: Line[] = [];
  #listeners = new Set<(line: Line) => void>();

  constructor(
    readonly child: ChildProcess,
    /** e.g. `client: nginx -p /tmp/x` */
    readonly label: string,
  ) {
    this.pid = child.pid ?? -1;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.#exit ??= { code, signal };
        resolve(this.#exit);
      });
      child.on('error', (error) => {
        this.#exit ??= { code: null, signal: null, error };
        resolve(this.#exit);
      });
    });
    this.#closed = new Promise((resolve) => {
      child.on('close', () => resolve());
      child.on('error', () => resolve());
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      const s = child[stream];
      if (!s) continue;
      s.setEncoding('utf8');
      s.on('data', (d: string) => this.#onData(stream, d));
      s.on('end', () => {
        if (this.#partial[stream]) this.#emit({ stream, text: this.#partial[stream] });
        this.#partial[stream] = '';
      });
    }
  }

  /** Output so far (the last megabyte of each stream). */
  get stdout(): string {
    return this.#text.stdout;
  }

  get stderr(): string {
    return this.#text.stderr;
  }

  /** `null` while running. */
  get exit(): ProcessExit | null {
    return this.#exit;
  }

  #onData(stream: 'stdout' | 'stderr', data: string): void {
    this.#text[stream] = (this.#text[stream] + data).slice(-MAX_TEXT);
    const parts = (this.#partial[stream] + data).split('\n');
    this.#partial[stream] = parts.pop() ?? '';
    for (const text of parts) this.#emit({ stream, text: text.replace(/\r$/, '') });
  }

  #emit(line: Line): void {
    this.#lines.push(line);
    if (this.#lines.length > MAX_LINES) this.#lines.splice(0, this.#lines.length - MAX_LINES);
    for (const l of this.#listeners) l(line);
  }

  #describe(): string {
    const out = tail(`${this.#text.stderr}\n${this.#text.stdout}`);
    return out ? `; output: ${out}` : '; no output';
  }

  /**
   * Resolves with the first line (already printed or to come) matching `pattern`; rejects when
   * the deadline passes or the process ends its output without one.
   */
  waitForLine(pattern: string | RegExp, opts: LineWaitOptions = {}): Promise<string> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const stream = opts.stream ?? 'any';
    const test = (text: string) =>
      typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text);
    const matches = (l: Line) => (stream === 'any' || l.stream === stream) && test(l.text);
    const early = this.#lines.find(matches);
    if (early) return Promise.resolve(early.text);
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null, text?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#listeners.delete(onLine);
        if (err) reject(err);
        else resolve(text!);
      };
      const onLine = (l: Line) => {
        if (matches(l)) finish(null, l.text);
      };
      const timer = setTimeout(
        () =>
          finish(
            new Error(`${this.label}: no line matching ${pattern} within ${timeoutMs} ms${this.#describe()}`),
          ),
        timeoutMs,
      );
      this.#listeners.add(onLine);
      void this.#closed.then(async () => {
        const exit = await this.exited;
        finish(
          new Error(`${this.label} ${describeExit(exit)} before printing ${pattern}${this.#describe()}`),
        );
      });
    });
  }

  /**
   * Polls (with a deadline) until a socket in the process's network namespace listens on
   * `port`: a TCP socket in LISTEN state, or a bound UDP socket. Reads /proc/<pid>/net/*, so it
   * sees the namespace without running anything inside it.
   */
  async waitForPort(port: number, opts: PortWaitOptions = {}): Promise<void> {
    const proto = opts.proto ?? 'tcp';
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#exit)
        throw new Error(
          `${this.label} ${describeExit(this.#exit)} before listening on ${proto} port ${port}${this.#describe()}`,
        );
      if (await isListening(this.pid, port, proto)) return;
      if (Date.now() > deadline)
        throw new Error(
          `${this.label}: nothing listens on ${proto} port ${port} after ${timeoutMs} ms${this.#describe()}`,
        );
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** Sends a signal (if still running). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.#exit) this.child.kill(signal);
  }

  /** Sends `signal`, then SIGKILL if it has not exited within `timeoutMs`; resolves on exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5_000): Promise<ProcessExit> {
    if (this.#exit) return this.#exit;
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        resolve();
      }, timeoutMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    return this.exited;
  }
}

function describeExit(exit: ProcessExit): string {
  if (exit.error) return `could not start (${exit.error.message})`;
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}

/** TCP LISTEN is state 0A in /proc/net/tcp*; an unconnected UDP socket is state 07. */
async function isListening(pid: number, port: number, proto: 'tcp' | 'udp'): Promise<boolean> {
  const state = proto === 'tcp' ? '0A' : '07';
  for (const file of [proto, `${proto}6`]) {
    let text: string;
    try {
      text = await readFile(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue; // process gone (reported by the caller) or no IPv6
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1];
      if (!local || f[3] !== state) continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) return true;
    }
  }
  return false;
}
