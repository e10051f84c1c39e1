/**
 * Why dnsmasq's files could not follow a change, as classes the HTTP layer
 * maps to statuses (http/errors.ts).
 *
 * @module
 */

/** dnsmasq's record files could not be written: their file system is full. */
export class RecordFilesFullError extends Error {
  /** The error naming the instance and the folder, with the write's failure as its cause. */
  constructor(name: string, baseDir: string, options?: ErrorOptions) {
    super(
      `cannot write the dnsmasq records of "${name}": no space left under ${baseDir}; the upload was not stored`,
      options,
    );
    this.name = "RecordFilesFullError";
  }
}
