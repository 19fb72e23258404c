/**
 * `npm run openapi [file]`: writes the OpenAPI document of every module to `file`
 * (default ./openapi.json). Boots the kernel with all modules on a throw-away SQLite directory,
 * so neither the environment nor the data of a running installation changes what is written.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp, loadAppConfig } from '../src/app.js';

const target = resolve(process.argv[2] ?? 'openapi.json');
const dataDir = mkdtempSync(join(tmpdir(), 'tr-openapi-'));
try {
  const config = loadAppConfig({
    NODE_ENV: 'test',
    NODE_CONFIG_DIR: fileURLToPath(new URL('../config', import.meta.url)),
    MODULES: 'all',
    DATA_DIR: dataDir,
    DATABASE_URL: '',
  });
  const kernel = await createApp(config);
  try {
    const document = kernel.openapi() as { paths: object };
    writeFileSync(target, `${JSON.stringify(document, null, 2)}\n`);
    console.log(`Wrote ${target}: ${Object.keys(document.paths).length} paths`);
  } finally {
    await kernel.stop();
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
