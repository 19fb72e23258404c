import Joi from 'joi';
import type { SettingsDeclaration } from '../../kernel/config.js';

/** Only for development: production must replace it (QR_ENCRYPTION_KEY). */
const DEV_QR_KEY = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const HEX_KEY = /^[0-9a-fA-F]{64}$/;

/** A 32-byte key: exactly 64 hex characters, otherwise base64 that decodes to 32 bytes. */
const aesKey = Joi.string().custom((value: string, helpers) => {
  const key = HEX_KEY.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64');
  if (key.length !== 32 || (!HEX_KEY.test(value) && key.toString('base64') !== value)) {
    return helpers.message({ custom: 'must be 32 bytes written as 64 hex characters or as base64' });
  }
  return key;
});

declare module '../../kernel/config.js' {
  interface ModuleSettings {
    holdTtlSeconds: number;
    qrTtlSeconds: number;
    qrEncryptionKey: Buffer;
    seedDemo: boolean;
  }
}

/**
 * Holds and the door. The QR settings are the door's: the event module checks tickets in, and
 * the flows that build and read QR codes arrive with the orchestrator, which then owns them.
 */
export const eventSettings: SettingsDeclaration = {
  keys: {
    holdTtlSeconds: Joi.number().integer().min(1).max(86400).default(300),
    qrTtlSeconds: Joi.number().integer().min(1).max(3600).default(60),
    qrEncryptionKey: aesKey.default(() => Buffer.from(DEV_QR_KEY, 'hex')),
    seedDemo: Joi.boolean().default(true),
  },
  env: {
    holdTtlSeconds: 'HOLD_TTL_SECONDS',
    qrTtlSeconds: 'QR_TTL_SECONDS',
    qrEncryptionKey: 'QR_ENCRYPTION_KEY',
    seedDemo: 'SEED_DEMO',
  },
  production: {
    qrEncryptionKey: Joi.required().invalid(DEV_QR_KEY, Buffer.from(DEV_QR_KEY, 'hex').toString('base64')),
  },
};
