import { loadConfigFile } from '../config/load.js';
import { ConfigInvalidError, ConfigUnreadableError, UsageError } from '../errors.js';
import { Usher } from '../runtime.js';
import { createLogger } from '../util/logger.js';
import type { CliIo } from './main.js';

export interface RunFlags {
  logLevel?: string | boolean | undefined;
  logFormat?: string | boolean | undefined;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const FORMATS = ['auto', 'json', 'pretty'];

/**
 * `usher run CONFIG`: start, then wait for SIGTERM/SIGINT (drain and exit 0) while SIGHUP
 * reloads the file. A config that fails validation exits 2 before anything starts.
 */
export async function runCommand(file: string, flags: RunFlags, io: CliIo): Promise<number> {
  if (typeof flags.logLevel === 'string' && !LEVELS.includes(flags.logLevel))
    throw new UsageError(
      `--log-level: expected one of ${LEVELS.join(', ')}, got ${JSON.stringify(flags.logLevel)}`,
    );
  if (typeof flags.logFormat === 'string' && !FORMATS.includes(flags.logFormat))
    throw new UsageError(
      `--log-format: expected one of ${FORMATS.join(', ')}, got ${JSON.stringify(flags.logFormat)}`,
    );

  const config = await loadConfigFile(file);
  const logger = createLogger({
    level: typeof flags.logLevel === 'string' ? flags.logLevel : config.log.level,
    format: (typeof flags.logFormat === 'string' ? flags.logFormat : config.log.format) as
      | 'auto'
      | 'json'
      | 'pretty',
    destination: io.stderr as NodeJS.WritableStream & { isTTY?: boolean },
  });

  const usher = await Usher.start(config, {
    logger,
    adminToken: process.env.USHER_ADMIN_TOKEN,
    configPath: file,
  });
  const urls = usher.urls();
  if (urls.dashboard) io.stdout.write(`usher: dashboard ${urls.dashboard}\n`);
  if (urls.metrics) io.stdout.write(`usher: metrics   ${urls.metrics}\n`);
  if (urls.api) io.stdout.write(`usher: state API ${urls.api}\n`);
  if (urls.list) io.stdout.write(`usher: list      ${urls.list}\n`);
  if (urls.liveDemo) io.stdout.write(`usher: live demo ${urls.liveDemo}\n`);
  io.stdout.write('usher: running (SIGHUP reloads, SIGTERM or Ctrl-C stops)\n');

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const onHup = () => {
      loadConfigFile(file)
        .then((next) => usher.reload(next))
        .then((result) => {
          if (!result.ok)
            logger.error(
              { issues: result.issues },
              `reload refused: ${result.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
            );
        })
        .catch((error: unknown) => {
          if (error instanceof ConfigInvalidError)
            logger.error({ issues: error.issues }, `reload refused, running config kept: ${error.message}`);
          else if (error instanceof ConfigUnreadableError)
            logger.error(`reload refused, running config kept: ${error.message}`);
          else logger.error({ err: error }, 'reload failed');
        });
    };
    const onStop = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn(`${signal} again: exiting at once`);
        process.exit(1);
      }
      stopping = true;
      logger.info(`${signal}: draining`);
      usher
        .close()
        .then(() => {
          logger.info('stopped cleanly');
          resolve(0);
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'error while stopping');
          resolve(1);
        })
        .finally(() => {
          process.off('SIGHUP', onHup);
          process.off('SIGTERM', onStop);
          process.off('SIGINT', onStop);
        });
    };
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
  });
}
