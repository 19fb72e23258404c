/** The order module's error codes and their HTTP statuses. */
export const orderErrors = {
  ORDER_NOT_FOUND: 404,
  TRANSFER_NOT_FOUND: 404,
  TRANSFER_IN_PROGRESS: 409,
  TRANSFER_INVALID_STATE: 409,
} as const;

declare module '../../kernel/errors.js' {
  interface ModuleErrorCodes extends Record<keyof typeof orderErrors, true> {}
}
