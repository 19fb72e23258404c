import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The TypeScript files under `dir`, as paths from the project root with forward slashes. */
export function sources(dir: string): string[] {
  return readdirSync(join(process.cwd(), dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}
