/** The kernel's own error codes: what any route, body, token or call between slices can fail with. */
export const KERNEL_ERRORS = {
  VALIDATION_ERROR: 400,
  INVALID_UUID: 400,
  UNAUTHORIZED: 401,
  TOKEN_EXPIRED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  IDEMPOTENCY_CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
} as const;

/**
 * The codes modules declare. A module lists them in its `defineModule({ errors })` and adds
 * them to this interface by declaration merging, so that `new AppError('SEAT_NOT_FOUND', …)`
 * type-checks only where some module owns the code.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by the modules through declaration merging
export interface ModuleErrorCodes {}

export type ErrorCode = keyof typeof KERNEL_ERRORS | keyof ModuleErrorCodes;

/** The one table from error code to HTTP status: the kernel's codes and every defined module's. */
const STATUS = new Map<string, { status: number; owner: string }>(
  Object.entries(KERNEL_ERRORS).map(([code, status]) => [code, { status, owner: 'kernel' }]),
);

/**
 * Adds a module's codes to the table. Every process defines every module (so that an error
 * envelope from another slice turns back into the same error); a code two owners give
 * different statuses is a programming error, named at load time.
 */
export function registerErrorCodes(owner: string, codes: Record<string, number>) {
  const entries = Object.entries(codes);
  // All checked before any is added: a refused module leaves nothing in the table.
  for (const [code, status] of entries) {
    const known = STATUS.get(code);
    if (known && known.status !== status) {
      throw new Error(
        `Module "${owner}" declares ${code} as ${status}, but ${known.owner} declares it as ${known.status}`,
      );
    }
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new Error(`Module "${owner}" declares ${code} with status ${status}, not a 4xx or 5xx`);
    }
  }
  for (const [code, status] of entries) if (!STATUS.has(code)) STATUS.set(code, { status, owner });
}

export const statusOf = (code: ErrorCode): number => STATUS.get(code)?.status ?? 500;

export const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && STATUS.has(code);

/** Every code with its status, for the OpenAPI document and the README. */
export const errorTable = (): Record<string, number> =>
  Object.fromEntries([...STATUS].map(([code, { status }]) => [code, status]));

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
    this.status = statusOf(code);
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
