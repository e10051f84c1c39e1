/**
 * What is wrong with an uploaded domain, as classes: the HTTP layer answers
 * both with 400, and a bug in the reader (any other error) stays a 500.
 *
 * @module
 */

/** Domain XML that cannot be read: malformed, a DOCTYPE or entity, too large, too deep. */
export class InvalidDomainXmlError extends SyntaxError {
  /** The error with a one-line message that says what was refused. */
  constructor(message: string) {
    super(message);
    this.name = "InvalidDomainXmlError";
  }
}

/** Domain XML that reads but lacks or garbles what mdserver needs (name, UUID, a MAC). */
export class InvalidDomainError extends TypeError {
  /** The error with a one-line message that quotes the bad value. */
  constructor(message: string) {
    super(message);
    this.name = "InvalidDomainError";
  }
}
