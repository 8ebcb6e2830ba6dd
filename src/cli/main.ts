/**
 * The `usher` command. Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad config.
 */
import { parseArgs } from 'node:util';
import { ConfigInvalidError, ConfigUnreadableError, UsageError } from '../errors.js';
import { VERSION } from '../version.js';
import { probeCommand } from './probe.js';
import { runCommand } from './run.js';
import { validateCommand } from './validate.js';

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

interface Command {
  summary: string;
  usage: string;
  help: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  run(
    positionals: string[],
    values: Record<string, string | boolean | undefined>,
    io: CliIo,
  ): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'run the roles a config file switches on',
    usage: 'usher run CONFIG [--log-level LEVEL] [--log-format auto|json|pretty]',
    help: [
      'Starts the registry, health checks, admin API and dashboard, and every role whose section is',
      'present in CONFIG. SIGHUP reloads CONFIG (refused, running config kept, if it is invalid);',
      'SIGTERM or SIGINT drains and exits cleanly. The admin token is read from USHER_ADMIN_TOKEN.',
      '',
      'Options:',
      '  --log-level LEVEL     fatal, error, warn, info, debug, trace or silent (overrides log.level)',
      '  --log-format FORMAT   auto (pretty on a terminal), json or pretty (overrides log.format)',
      '  -h, --help            this help',
    ].join('\n'),
    options: { 'log-level': { type: 'string' }, 'log-format': { type: 'string' } },
    run: (pos, values, io) => {
      if (pos.length !== 1) throw new UsageError('run: expected exactly one CONFIG file');
      return runCommand(pos[0]!, { logLevel: values['log-level'], logFormat: values['log-format'] }, io);
    },
  },
  validate: {
    summary: 'check a config file without starting anything',
    usage: 'usher validate CONFIG [--json]',
    help: [
      'Reads and validates CONFIG. Exit 0 and a one-line summary when it is valid; exit 2 with every',
      'problem as `path: reason` when it is not.',
      '',
      'Options:',
      '  --json       print the validated config with defaults filled in, as JSON',
      '  -h, --help   this help',
    ].join('\n'),
    options: { json: { type: 'boolean' } },
    run: (pos, values, io) => {
      if (pos.length !== 1) throw new UsageError('validate: expected exactly one CONFIG file');
      return validateCommand(pos[0]!, { json: values.json === true }, io);
    },
  },
  probe: {
    summary: 'ask a probe assigner where a client would be placed',
    usage:
      'usher probe --balancer HOST:PORT --app NAME [--incarnation ID] [--user NAME] [--timeout MS] [--json]',
    help: [
      'Sends a probe (seed 000) to the assigner at HOST:PORT as a client of app NAME would, waits for',
      'the answer (from the chosen member itself in forward mode, from the assigner in answer mode),',
      "prints the assignment — member id, the member's own address:port, app, incarnation, site and",
      'session — and ends that session at once (BYE). Exit 0 when placed; exit 1 when nothing answers',
      'within the timeout or the assigner refuses; exit 2 for bad usage.',
      '',
      'Options:',
      "  --balancer HOST:PORT   the assigner's public address ([IPv6]:PORT for IPv6)",
      '  --app NAME             the application to be placed in',
      '  --incarnation ID       a given incarnation (world, room) of the app; default: the assigner picks',
      '  --user NAME            the user name members show in their lobby',
      '  --timeout MS           how long to wait for an answer, in ms (default 2000; 3 probes are sent)',
      '  --json                 print the assignment as JSON',
      '  -h, --help             this help',
    ].join('\n'),
    options: {
      balancer: { type: 'string' },
      app: { type: 'string' },
      incarnation: { type: 'string' },
      user: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    },
    run: (pos, values, io) => {
      if (pos.length !== 0) throw new UsageError(`probe: unexpected argument: ${pos[0]}`);
      return probeCommand(
        {
          balancer: values.balancer as string | undefined,
          app: values.app as string | undefined,
          incarnation: values.incarnation as string | undefined,
          user: values.user as string | undefined,
          timeout: values.timeout as string | undefined,
          json: values.json === true,
        },
        io,
      );
    },
  },
};

export function usage(): string {
  const lines = [
    `usher ${VERSION} — decides where a client belongs, then steps out of the way`,
    '',
    'Usage: usher <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`),
    `  ${'help'.padEnd(10)} show help for a command`,
    '',
    'Options:',
    '  -h, --help      show help (also: usher <command> --help)',
    '  -v, --version   print the version',
  ];
  return `${lines.join('\n')}\n`;
}

function commandHelp(c: Command): string {
  return `Usage: ${c.usage}\n\n${c.summary}.\n\n${c.help}\n`;
}

/** Runs the CLI; resolves with the exit code (for `run`, once the process has been told to stop). */
export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const [first, ...rest] = argv;
  try {
    if (first === undefined) {
      io.stderr.write(usage());
      return 2;
    }
    if (first === '--version' || first === '-v') {
      io.stdout.write(`${VERSION}\n`);
      return 0;
    }
    if (first === '--help' || first === '-h') {
      io.stdout.write(usage());
      return 0;
    }
    if (first === 'help') {
      const target = rest[0];
      if (target === undefined) {
        io.stdout.write(usage());
        return 0;
      }
      const c = COMMANDS[target];
      if (!c) throw new UsageError(`unknown command: ${target}`);
      io.stdout.write(commandHelp(c));
      return 0;
    }
    const command = COMMANDS[first];
    if (!command) throw new UsageError(`unknown command: ${first}`);
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: rest,
        options: { ...command.options, help: { type: 'boolean', short: 'h' } },
        allowPositionals: true,
        strict: true,
      });
    } catch (error) {
      throw new UsageError(`${first}: ${(error as Error).message}`);
    }
    if (parsed.values.help) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    return await command.run(
      parsed.positionals,
      parsed.values as Record<string, string | boolean | undefined>,
      io,
    );
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`usher: ${error.message}\n\n${usage()}`);
      return 2;
    }
    if (error instanceof ConfigInvalidError || error instanceof ConfigUnreadableError) {
      io.stderr.write(`usher: ${error.message}\n`);
      return 2;
    }
    io.stderr.write(`usher: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}
