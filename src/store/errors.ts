/**
 * Why an upload cannot be stored, as classes: the HTTP layer maps each to
 * its status in one table (http/errors.ts); `import-md-server` skips any
 * RegistrationError and stops on anything else.
 *
 * @module
 */

/** An upload that cannot be stored; the subclasses say why. */
export class RegistrationError extends Error {
  /** The error with a one-line message naming the domain or address. */
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The MAC or the address asked for already belongs to another instance. */
export class AddressConflictError extends RegistrationError {}

/** The instance-id the domain would get already belongs to another domain. */
export class InstanceIdConflictError extends RegistrationError {}

/** Every address of the pool is held. */
export class PoolFullError extends RegistrationError {}

/** The address asked for (an import) is not in the pool. */
export class AddressOutsidePoolError extends RegistrationError {}

/** The domain has no interface on the managed network. */
export class NoManagedInterfaceError extends RegistrationError {}

/** The instance record would be larger than the store takes (64 KiB). */
export class RecordTooLargeError extends RegistrationError {}

/** Other writers kept changing the same records: every attempt to commit met a conflict. */
export class StoreBusyError extends Error {
  /** The error naming what could not be written, with the last failure as its cause. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreBusyError";
  }
}

/** The store's disk is full: nothing more can be written until space is freed. */
export class StoreFullError extends Error {
  /** The error for a full store, with KV's failure as its cause. */
  constructor(options?: ErrorOptions) {
    super("the instance store is full (no space left on its disk); free space where kv_file is", options);
    this.name = "StoreFullError";
  }
}

/** The store's backend cannot be reached (etcd without quorum, no endpoint answering): nothing is written. */
export class StoreUnavailableError extends Error {
  /** The error naming what could not be reached, with the failure as its cause. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }
}
