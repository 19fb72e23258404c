/** The one table from error code to HTTP status (the README lists them). Modules add their codes here. */
export const ERROR_STATUS = {
  VALIDATION_ERROR: 400,
  INVALID_UUID: 400,
  SELF_TRANSFER: 400,
  QR_INVALID: 400,
  INVALID_SIGNATURE: 400,
  UNAUTHORIZED: 401,
  TOKEN_EXPIRED: 401,
  OTP_INVALID: 401,
  INSUFFICIENT_CREDITS: 402,
  FORBIDDEN: 403,
  NOT_SEAT_OWNER: 403,
  NOT_FOUND: 404,
  USER_NOT_FOUND: 404,
  EVENT_NOT_FOUND: 404,
  VENUE_NOT_FOUND: 404,
  SEAT_NOT_FOUND: 404,
  ORDER_NOT_FOUND: 404,
  TRANSFER_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  EMAIL_ALREADY_EXISTS: 409,
  SEAT_UNAVAILABLE: 409,
  SEAT_ALREADY_SOLD: 409,
  SEAT_NOT_HELD: 409,
  ORDER_ALREADY_CONFIRMED: 409,
  TRANSFER_INVALID_STATE: 409,
  TRANSFER_IN_PROGRESS: 409,
  IDEMPOTENCY_CONFLICT: 409,
  EVENT_ENDED: 410,
  HOLD_EXPIRED: 410,
  OTP_EXPIRED: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  OTP_REQUIRED: 428,
  RATE_LIMITED: 429,
  OTP_MAX_RETRIES: 429,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorDetail {
  field: string;
  message: string;
}

/** Every error a client may see. Handlers throw these; the errors middleware envelopes them. */
export class AppError extends Error {
  readonly status: number;
  readonly expose = true;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.name = 'AppError';
    this.status = ERROR_STATUS[code];
  }

  toJSON() {
    return {
      success: false as const,
      error_code: this.code,
      message: this.message,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export const isErrorCode = (code: unknown): code is ErrorCode =>
  typeof code === 'string' && Object.hasOwn(ERROR_STATUS, code);
