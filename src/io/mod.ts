/**
 * Small I/O helpers every other part may use: atomic file writes, bounded
 * reading of a byte stream as text, telling a full disk, and sleeping. They import nothing, so
 * the libvirt hook can use them without growing its start-up.
 *
 * @module
 */

export { type AtomicWriteOptions, removeFile, updateFile, writeFileAtomic, type WriteOutcome } from "./files.ts";
export {
  type ByteSource,
  NotUtf8Error,
  readBytesFrom,
  readText,
  readTextFrom,
  type ReadTextOptions,
  StreamReadError,
  TextTooLargeError,
} from "./read_text.ts";
export { folderIsFull, isNoSpace } from "./no_space.ts";
export { shellQuote } from "./shell_quote.ts";
export { sleep } from "./sleep.ts";
