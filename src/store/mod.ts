/**
 * Everything kept in Deno KV: instance records and their secondary indexes
 * (name, MAC, address, instance-id) with atomic address allocation
 * (store.ts), uploads turned into records (registration.ts), boot tracking
 * and SSH host keys (access.ts), and the one instance state machine
 * (boot_state.ts). Failures an operator or uploader can cause are classes
 * (errors.ts). It may import config/, ipam/, domain/, io/ and log/; it
 * knows nothing of HTTP.
 *
 * @module
 */

export { AccessRecorder, type AccessRecorderOptions, hostKeysFromPhoneHome, knownHostsLines } from "./access.ts";
export { type AccessRecord, type BootState, bootState, emptyAccessRecord, type InstanceState } from "./boot_state.ts";
export {
  AddressConflictError,
  AddressOutsidePoolError,
  InstanceIdConflictError,
  NoManagedInterfaceError,
  PoolFullError,
  RecordTooLargeError,
  RegistrationError,
  StoreBusyError,
  StoreFullError,
} from "./errors.ts";
export { type Instance, instanceIdFromUuid } from "./instance.ts";
export {
  GENERATED_PASSWORD_LENGTH,
  generatePassword,
  type InstancePassword,
  MAX_PASSWORD_LENGTH,
  newInstancePassword,
  passwordProblem,
  sha512Crypt,
} from "./password.ts";
export { configDrivePath, registerDomainXml, type UploadResult, uploadSummary } from "./registration.ts";
export {
  ADDRESS_CACHE_TTL_MS,
  type AdoptOptions,
  InstanceStore,
  type Registration,
  type StoreEvent,
  type StoreOptions,
} from "./store.ts";
