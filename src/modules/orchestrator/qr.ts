import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import Joi from 'joi';
import { uuid } from '../../kernel/schemas.js';

/** What a ticket's QR code says, in the clear once decrypted. */
export interface QrPayload {
  seat_id: string;
  user_id: string;
  hall_id: string;
  /** `YYYY-MM-DDTHH:MM:SSZ`, whole seconds. */
  generated_at: string;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const payloadSchema = Joi.object<QrPayload>({
  seat_id: uuid().required(),
  user_id: uuid().required(),
  hall_id: Joi.string().min(1).max(50).required(),
  generated_at: Joi.string()
    .pattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
    .required(),
});

/** A moment in whole seconds, as the QR format writes it. */
export const wholeSecond = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/** base64(iv ‖ ciphertext ‖ tag), AES-256-GCM with a fresh 12-byte IV. */
export function sealQr(key: Buffer, payload: QrPayload): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

/** The payload of a QR code, or undefined when it does not decrypt, fails its tag or is not ours. */
export function openQr(key: Buffer, text: string): QrPayload | undefined {
  if (typeof text !== 'string' || text.length > 4096 || !BASE64.test(text)) return undefined;
  const raw = Buffer.from(text, 'base64');
  if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    const plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
    const { value, error } = payloadSchema.validate(JSON.parse(plain.toString('utf8')));
    return error ? undefined : value;
  } catch {
    return undefined;
  }
}
