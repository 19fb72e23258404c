/** The user module's error codes and their HTTP statuses. */
export const userErrors = {
  SELF_TRANSFER: 400,
  INVALID_SIGNATURE: 400,
  OTP_INVALID: 401,
  INSUFFICIENT_CREDITS: 402,
  USER_NOT_FOUND: 404,
  EMAIL_ALREADY_EXISTS: 409,
  OTP_EXPIRED: 410,
  OTP_MAX_RETRIES: 429,
} as const;

declare module '../../kernel/errors.js' {
  interface ModuleErrorCodes extends Record<keyof typeof userErrors, true> {}
}
