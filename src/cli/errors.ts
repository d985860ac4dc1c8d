/** What the CLI's exit codes mean (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The gateway answered with an error (unknown id, bad value, 5xx), or a local command failed. */
  server: 1,
  /** Bad invocation or bad configuration. */
  usage: 2,
  /** The gateway could not be reached (refused, DNS, TLS, timeout). */
  unreachable: 3,
  /** The key was refused: 401, 403, or this client IP blocked after wrong keys. */
  auth: 4,
} as const;

/** A failure with the exit code it means. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** The HTTP status of the gateway's answer, when there was one. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A CLI usage error: printed with the usage hint, exit code 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}
