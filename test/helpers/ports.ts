import { createHttpPort, type PortDefinition } from '../../src/kernel/ports.js';
import type { PortName, PortTypes } from '../../src/kernel/registry.js';
import type { TestApp } from './app.js';

/** A port's two adapters: in-process, and HTTP against the app's internal routes, with the app's deadline. */
export const adaptersOf = <K extends PortName>(name: K, def: PortDefinition) => ({
  local: (app: TestApp): PortTypes[K] => app.kernel.ports.get(name),
  http: (app: TestApp): PortTypes[K] =>
    createHttpPort<PortTypes[K]>(def, app.url, app.kernel.config.serviceToken, app.kernel.config.internalTimeoutMs),
});
