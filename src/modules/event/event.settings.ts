import Joi from 'joi';
import type { SettingsDeclaration } from '../../kernel/config.js';

declare module '../../kernel/config.js' {
  interface ModuleSettings {
    seedDemo: boolean;
  }
}

/** Demo data. Hold times, order sizes and QR keys are the purchase policy: the orchestrator's settings. */
export const eventSettings: SettingsDeclaration = {
  keys: {
    seedDemo: Joi.boolean().default(true),
  },
  env: {
    seedDemo: 'SEED_DEMO',
  },
};
