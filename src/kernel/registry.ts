import type { Config } from './config.js';
import type { Faults } from './faults.js';
import type { ModuleDefinition } from './module.js';
import { createHttpPort, createLocalPort, type PortImpl, servePort } from './ports.js';

/**
 * The ports by module name. Each module adds its port's interface here by declaration merging
 * (`interface PortTypes { user: UserPort }`), so that a port is typed where it is declared.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by the modules through declaration merging
export interface PortTypes {}

export type PortName = keyof PortTypes & string;

/** The ports a module declared in `requires`, and only those. */
export type RequiredPorts<R extends PortName> = { readonly [K in R]: PortTypes[K] };

type Methods = ReturnType<typeof servePort>;

/**
 * Hands out ports: the in-process adapter when the module runs here, the HTTP adapter to its
 * slice otherwise. Every `requires` entry is checked at start, naming the module at fault.
 */
export function createPortRegistry(options: {
  all: ModuleDefinition[];
  loaded: ModuleDefinition[];
  config: Config;
  faults: Faults;
}) {
  const { all, loaded, config, faults } = options;
  const served = new Map<string, Methods>();
  const clients = new Map<string, unknown>();

  function check(owner: string, name: string) {
    const def = all.find((m) => m.name === name);
    if (!def?.port) throw new Error(`Module "${owner}" requires "${name}", which is not a module with a port`);
    if (!loaded.includes(def) && !config.moduleUrls[name]) {
      throw new Error(
        `Module "${owner}" requires "${name}", which this process does not load, and no URL is set for it (${name.toUpperCase()}_URL)`,
      );
    }
  }

  function get<K extends PortName>(name: K): PortTypes[K] {
    const known = clients.get(name);
    if (known) return known as PortTypes[K];
    const def = all.find((m) => m.name === name);
    if (!def?.port) throw new Error(`No module offers a port named "${name}"`);
    if (loaded.includes(def)) throw new Error(`Port "${name}" was used before its module started`);
    const remote = createHttpPort(def.port, config.moduleUrls[name], config.serviceToken, config.internalTimeoutMs);
    clients.set(name, remote);
    return remote as PortTypes[K];
  }

  return {
    get,
    /** Fails the start when a module requires a port that no module offers or that cannot be reached. */
    checkRequires(owner: string, names: readonly string[]) {
      for (const name of names) check(owner, name);
    },
    /** Registers a started module's implementation of its port. */
    serve(def: ModuleDefinition, impl: PortImpl) {
      if (!def.port) return;
      const methods = servePort(def.port, impl, faults);
      served.set(def.name, methods);
      clients.set(def.name, createLocalPort(def.port, methods, config.internalTimeoutMs));
    },
    served: (name: string) => served.get(name),
    /** The ports object a module's start receives: exactly the ports it declared. */
    forModule<R extends PortName>(def: ModuleDefinition<R>): RequiredPorts<R> {
      const declared = new Set<string>(def.requires ?? []);
      return new Proxy({} as RequiredPorts<R>, {
        get(_, name) {
          if (typeof name === 'symbol' || name === 'then') return undefined;
          if (!declared.has(name)) {
            throw new Error(`Module "${def.name}" uses the port "${String(name)}" without declaring it in requires`);
          }
          return get(name as PortName);
        },
      });
    },
  };
}

export type PortRegistry = ReturnType<typeof createPortRegistry>;
