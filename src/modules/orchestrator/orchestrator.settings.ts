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
    maxSeatsPerOrder: number;
    maxHeldSeatsPerUser: number;
    qrTtlSeconds: number;
    qrEncryptionKey: Buffer;
  }
}

/** The purchase policy (hold time, seats per order and per user) and the QR codes of tickets. */
export const orchestratorSettings: SettingsDeclaration = {
  keys: {
    holdTtlSeconds: Joi.number().integer().min(1).max(86400).default(300),
    maxSeatsPerOrder: Joi.number().integer().min(1).max(100).default(10),
    maxHeldSeatsPerUser: Joi.number().integer().min(1).max(1000).default(10),
    qrTtlSeconds: Joi.number().integer().min(1).max(3600).default(60),
    qrEncryptionKey: aesKey.default(() => Buffer.from(DEV_QR_KEY, 'hex')),
  },
  env: {
    holdTtlSeconds: 'HOLD_TTL_SECONDS',
    maxSeatsPerOrder: 'MAX_SEATS_PER_ORDER',
    maxHeldSeatsPerUser: 'MAX_HELD_SEATS_PER_USER',
    qrTtlSeconds: 'QR_TTL_SECONDS',
    qrEncryptionKey: 'QR_ENCRYPTION_KEY',
  },
  production: {
    qrEncryptionKey: Joi.required().invalid(DEV_QR_KEY, Buffer.from(DEV_QR_KEY, 'hex').toString('base64')),
  },
};
