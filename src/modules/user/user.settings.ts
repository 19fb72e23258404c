import Joi from 'joi';
import { httpUrl, type SettingsDeclaration } from '../../kernel/config.js';

/** Only for development: production must replace it (STRIPE_WEBHOOK_SECRET). */
const DEV_WEBHOOK_SECRET = 'whsec_dev_only_default_secret';

declare module '../../kernel/config.js' {
  interface ModuleSettings {
    otpTtlSeconds: number;
    adminEmail: string;
    adminPassword: string;
    seedDemo: boolean;
    otpProvider: 'local' | 'smu';
    otpDelivery: 'log' | 'webhook';
    otpWebhookUrl: string;
    smuApiUrl: string;
    smuApiKey: string;
    paymentProvider: 'fake' | 'stripe';
    paymentCurrency: string;
    stripeSecretKey: string;
    stripeWebhookSecret: string;
    stripeApiUrl: string;
    passwordHash: { memoryCost: number; timeCost: number };
  }
}

export const userSettings: SettingsDeclaration = {
  keys: {
    otpTtlSeconds: Joi.number().integer().min(1).max(86400).default(300),
    adminEmail: Joi.string().email({ tlds: false }).allow('').default(''),
    adminPassword: Joi.string().min(8).max(128).allow('').default(''),
    seedDemo: Joi.boolean().default(true),
    otpProvider: Joi.string().valid('local', 'smu').default('local'),
    otpDelivery: Joi.string().valid('log', 'webhook').default('log'),
    // Key-level conditions: an object-level `.when` would be concatenated with `allow('')` and so let '' through.
    otpWebhookUrl: Joi.when('otpDelivery', {
      is: 'webhook',
      then: httpUrl.required(),
      otherwise: httpUrl.allow(''),
    }).default(''),
    smuApiUrl: Joi.when('otpProvider', { is: 'smu', then: httpUrl.required(), otherwise: httpUrl.allow('') }).default(
      '',
    ),
    smuApiKey: Joi.string().allow('').default(''),
    paymentProvider: Joi.string().valid('fake', 'stripe').default('fake'),
    paymentCurrency: Joi.string().lowercase().length(3).default('sgd'),
    stripeSecretKey: Joi.when('paymentProvider', {
      is: 'stripe',
      then: Joi.string().required(),
      otherwise: Joi.string().allow(''),
    }).default(''),
    stripeWebhookSecret: Joi.string().min(8).default(DEV_WEBHOOK_SECRET),
    stripeApiUrl: httpUrl.allow('').default(''),
    passwordHash: Joi.object({
      memoryCost: Joi.number().integer().min(1024).required(),
      timeCost: Joi.number().integer().min(1).required(),
    }).default({ memoryCost: 19456, timeCost: 2 }),
  },
  env: {
    otpTtlSeconds: 'OTP_TTL_SECONDS',
    adminEmail: 'ADMIN_EMAIL',
    adminPassword: 'ADMIN_PASSWORD',
    seedDemo: 'SEED_DEMO',
    otpProvider: 'OTP_PROVIDER',
    otpDelivery: 'OTP_DELIVERY',
    otpWebhookUrl: 'OTP_WEBHOOK_URL',
    smuApiUrl: 'SMU_API_URL',
    smuApiKey: 'SMU_API_KEY',
    paymentProvider: 'PAYMENT_PROVIDER',
    paymentCurrency: 'PAYMENT_CURRENCY',
    stripeSecretKey: 'STRIPE_SECRET_KEY',
    stripeWebhookSecret: 'STRIPE_WEBHOOK_SECRET',
    stripeApiUrl: 'STRIPE_API_URL',
  },
  production: {
    stripeWebhookSecret: Joi.required().invalid(DEV_WEBHOOK_SECRET),
    // `log` delivery writes every code to the log: a development convenience, never a way to send codes.
    otpDelivery: Joi.when('otpProvider', {
      is: 'local',
      then: Joi.string().valid(Joi.override, 'webhook').required().messages({
        'any.only': '{{#label}} must be webhook in production (log delivery writes every code to the log)',
        'any.required': '{{#label}} must be webhook in production (log delivery writes every code to the log)',
      }),
    }),
  },
};
