import { createApp, loadAppConfig } from './app.js';
import { type Config, ConfigError } from './kernel/config.js';
import { createLogger } from './kernel/logger.js';
import { exitOnSignals, listen } from './kernel/server.js';

const started = performance.now();
let config: Config;
try {
  config = loadAppConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
}
const log = createLogger(config.logLevel);
try {
  const kernel = await createApp(config, { log });
  const running = await listen(kernel);
  exitOnSignals(running, kernel);
  const base = `http://localhost:${running.port}`;
  log.info(
    {
      port: running.port,
      modules: kernel.loaded.map((m) => m.name),
      startup_ms: Math.round(performance.now() - started),
    },
    'listening',
  );
  if (process.stdout.isTTY || config.env === 'development') {
    console.log(`\nTicketRemaster (${kernel.loaded.map((m) => m.name).join(', ')}) on ${base}`);
    console.log(`  Swagger UI: ${base}/docs   OpenAPI: ${base}/openapi.json   Health: ${base}/health`);
    for (const line of kernel.startNotes) console.log(`  ${line}`);
    console.log('');
  }
} catch (err) {
  log.fatal({ err }, 'start failed');
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
