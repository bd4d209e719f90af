// Errors a user can meet. Each carries a one-line message that names the file and what to do;
// the command line maps each class to its exit code, the extension shows the message as is.

/** The model file cannot be used: missing, corrupt, not a ViT, unsupported structure. */
export class ModelFileError extends Error {
  override readonly name = 'ModelFileError';
}

/** Input images or arrays cannot be used: missing folder, unreadable image, wrong shape. */
export class InputDataError extends Error {
  override readonly name = 'InputDataError';
}

/** The request itself is malformed (bad option values). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The run was cancelled by the user. */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
  constructor(message = 'Analysis cancelled.') {
    super(message);
  }
}

/** Names of the user-facing error classes, as they travel between processes. */
export type UserErrorKind = 'ModelFileError' | 'InputDataError' | 'UsageError' | 'CancelledError';

export function isUserError(error: unknown): error is ModelFileError | InputDataError | UsageError | CancelledError {
  return error instanceof ModelFileError || error instanceof InputDataError || error instanceof UsageError || error instanceof CancelledError;
}

export function userErrorFromKind(kind: string, message: string): Error {
  switch (kind) {
    case 'ModelFileError':
      return new ModelFileError(message);
    case 'InputDataError':
      return new InputDataError(message);
    case 'UsageError':
      return new UsageError(message);
    case 'CancelledError':
      return new CancelledError(message);
    default: {
      const error = new Error(message);
      error.name = kind;
      return error;
    }
  }
}
