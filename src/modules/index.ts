import type { ModuleDefinition } from '../kernel/module.js';
import { eventModule } from './event/index.js';
import { orchestratorModule } from './orchestrator/index.js';
import { orderModule } from './order/index.js';
import { userModule } from './user/index.js';

/** Every module of the system, in start order. Adding a module means adding it here. */
export const modules: ModuleDefinition[] = [userModule, orderModule, eventModule, orchestratorModule];
