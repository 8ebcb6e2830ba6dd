import { readFileSync, writeFileSync } from 'node:fs';

/** Replaces what stands between `<!-- NAME:start -->` and `<!-- NAME:end -->` in README.md. */
export function replaceReadmeBlock(name: string, content: string, file = 'README.md'): void {
  const readme = readFileSync(file, 'utf8');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = readme.indexOf(start);
  const b = readme.indexOf(end);
  if (a < 0 || b < 0) throw new Error(`${file} lacks the ${start} ... ${end} markers`);
  writeFileSync(file, `${readme.slice(0, a + start.length)}\n${content}\n${readme.slice(b)}`);
}
