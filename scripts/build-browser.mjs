// Builds the browser SDK bundle (dist/browser/usher-client.js) after `tsc`; `npm run build` runs it.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/client/index.ts'],
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  outfile: 'dist/browser/usher-client.js',
  sourcemap: true,
  logLevel: 'warning',
});
