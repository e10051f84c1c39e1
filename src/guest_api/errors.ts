/**
 * Why a guest is not answered, as classes; http/errors.ts maps each to its
 * status.
 *
 * @module
 */

/** No instance holds the address a request came from. */
export class UnknownGuestError extends Error {
  /** The error naming the source address. */
  constructor(source: string) {
    super(`unknown client ${source}: no instance has this address`);
    this.name = "UnknownGuestError";
  }
}

/** `verify_mac = yes` and the neighbour table does not vouch for the guest's MAC at its address. */
export class MacMismatchError extends Error {
  /** The error naming the address and why it was refused. */
  constructor(source: string, reason: string) {
    super(`refused ${source}: ${reason}`);
    this.name = "MacMismatchError";
  }
}

/** A user-data or vendor-data template failed; the details are in the log, the message is for the guest. */
export class DocumentTemplateError extends Error {
  /** The error with the one line the guest may see. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DocumentTemplateError";
  }
}

/** The IMDSv2 token TTL header is missing or outside 1–21600 seconds. */
export class InvalidTokenTtlError extends RangeError {
  /** The error naming the header and the value. */
  constructor(message: string) {
    super(message);
    this.name = "InvalidTokenTtlError";
  }
}
