/**
 * The errors a template can fail with, for the log and for the one place
 * that turns errors into responses.
 *
 * @module
 */

/** A template failed to compile or render; carries file and line for the log. */
export class TemplateError extends Error {
  /** Template file (or directory) that failed. */
  readonly file: string;
  /** Line in the template (or in the rendered document, for YAML errors), if known. */
  readonly line: number | null;

  /** Builds an error for `file` at `line`. */
  constructor(
    message: string,
    options: { file: string; line: number | null; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.name = "TemplateError";
    this.file = options.file;
    this.line = options.line;
  }
}

/** Thrown when the domain names a userdata_prefix that matches no file (md_server answered 404). */
export class TemplateNotFoundError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "TemplateNotFoundError";
  }
}
