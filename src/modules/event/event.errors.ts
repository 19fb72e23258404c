/** The event module's error codes and their HTTP statuses. */
export const eventErrors = {
  NOT_SEAT_OWNER: 403,
  EVENT_NOT_FOUND: 404,
  VENUE_NOT_FOUND: 404,
  SEAT_NOT_FOUND: 404,
  SEAT_UNAVAILABLE: 409,
  SEAT_ALREADY_SOLD: 409,
  SEAT_NOT_HELD: 409,
  HOLD_LIMIT_REACHED: 409,
  EVENT_ENDED: 410,
  HOLD_EXPIRED: 410,
} as const;

declare module '../../kernel/errors.js' {
  interface ModuleErrorCodes extends Record<keyof typeof eventErrors, true> {}
}
