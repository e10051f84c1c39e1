/**
 * Everything the instance store keeps: instance records and their secondary
 * indexes (name, MAC, address, instance-id) with atomic address allocation
 * (store.ts), uploads turned into records (registration.ts), boot tracking
 * and SSH host keys (access.ts), the instance state (boot_state.ts), and
 * one state machine per boot fed by cloud-init's events (boot_machine.ts,
 * kept with a bounded history by boots.ts), all on a small key-value
 * interface (backend.ts) with two backends: Deno KV for one host
 * (kv_backend.ts) and etcd v3 for a fleet (etcd_backend.ts, open.ts chooses
 * by `[store] backend`). Failures an operator or uploader can cause are
 * classes (errors.ts). It may import config/, ipam/, domain/, io/ and log/;
 * it knows nothing of HTTP.
 *
 * @module
 */

export {
  applyEvent,
  type Boot,
  type BootCause,
  type BootOutcome,
  type BootPhase,
  type BootProblem,
  eventBelongs,
  isFinal,
  noteFetch,
  openBoot,
  parseReportingEvent,
  PHASES,
  type ReportingEvent,
  type Stage,
  type StageRecord,
  STAGES,
} from "./boot_machine.ts";
export { BootJournal, type BootJournalOptions, type BootListener, type EventFate } from "./boots.ts";
export { AccessRecorder, type AccessRecorderOptions, hostKeysFromPhoneHome, knownHostsLines } from "./access.ts";
export type {
  BackendStatus,
  FollowListener,
  KeyValueBackend,
  StoreChange,
  StoreCheck,
  StoreCommitResult,
  StoreEntry,
  StoreKey,
  StoreMutation,
  StoreSelector,
} from "./backend.ts";
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
  StoreUnavailableError,
} from "./errors.ts";
export { EtcdBackend, type EtcdBackendOptions } from "./etcd_backend.ts";
export { type EndpointProbe, formatProbe, probeEndpoints } from "./etcd_probe.ts";
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
export {
  MAX_POSTED_PASSWORD_BYTES,
  type PostedPassword,
  postedPasswordProblem,
  type PostOutcome,
} from "./posted_password.ts";
export { DenoKvBackend, isKv } from "./kv_backend.ts";
export type { MirrorStatus } from "./_mirror.ts";
export { migrateStore, type MigrationOutcome } from "./migrate_store.ts";
export { openBackend } from "./open.ts";
export { configDrivePath, registerDomainXml, type UploadResult, uploadSummary } from "./registration.ts";
export {
  ADDRESS_CACHE_TTL_MS,
  type AdoptOptions,
  InstanceStore,
  type Registration,
  type StoreEvent,
  type StoreOptions,
  type UploadKind,
} from "./store.ts";
