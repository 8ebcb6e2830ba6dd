/**
 * The browser SDK as one ES module (`GET /usher/client.js`). A built package ships it at
 * `dist/browser/usher-client.js` (`npm run build`); from a source checkout it is bundled once,
 * in memory, with esbuild (a dev dependency) on first use.
 */
import { access, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

let cached: Promise<string> | undefined;

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function load(): Promise<string> {
  // From dist/list/client-bundle.js the bundle is dist/browser/; from src/list/ it is ../../dist/browser/.
  for (const rel of ['../browser/usher-client.js', '../../dist/browser/usher-client.js']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (await exists(path)) return readFile(path, 'utf8');
  }
  const entry = fileURLToPath(new URL('../client/index.ts', import.meta.url));
  if (!(await exists(entry)))
    throw new Error('the browser bundle is missing: run `npm run build` (dist/browser/usher-client.js)');
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

/** The bundle's source text (cached; a failed attempt is retried on the next call). */
export function clientBundle(): Promise<string> {
  cached ??= load().catch((error: unknown) => {
    cached = undefined;
    throw error;
  });
  return cached;
}
