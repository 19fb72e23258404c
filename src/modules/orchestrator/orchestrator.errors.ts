/** The orchestrator's own error codes and their HTTP statuses; the flows pass on the other modules' refusals. */
export const orchestratorErrors = {
  ORDER_ALREADY_CONFIRMED: 409,
  OTP_REQUIRED: 428,
  QR_INVALID: 400,
} as const;

declare module '../../kernel/errors.js' {
  interface ModuleErrorCodes extends Record<keyof typeof orchestratorErrors, true> {}
}
