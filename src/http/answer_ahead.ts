/**
 * Guests' answers prepared ahead. A guest's metadata and user-data change
 * only when its record, a template, the configuration (keys, template data,
 * token mode, APIs) or the service's URLs change, so the first time the
 * handler answers a path for a guest its answer is kept, as the bytes of a
 * response, and the next request for that path from that guest is answered
 * from memory, synchronously, before any Request is made (the guest
 * server's `answerAhead`).
 *
 * Each kept answer is used only while everything it was made from is the
 * same object or stat as then:
 * - the instance record: the store's address cache holds the very same
 *   frozen record (an upload, a re-upload, a delete or a state change made
 *   here drops it at once; a change made by another process is seen within
 *   the cache's time to live, as before);
 * - the configuration and the template renderer: a reload replaces both;
 * - the phone-home and metadata URLs of the template data;
 * - user-data only: the renderer's signature of the template's files
 *   (two stats per request, so a template added, changed or removed counts
 *   on the very next request: docs/benchmarks.md says why not a watcher).
 *
 * Requests go to the handler instead when the answer needs more than a
 * lookup: a method other than GET, a guest the address cache does not hold,
 * `verify_mac` with a neighbour table to read (never skipped), a token that
 * was not seen valid for this guest before (or has expired since), no token
 * where one is required. What a request notes (boot tracking, metrics, its
 * log line) is the same on both ways.
 *
 * @module
 */

import { type AheadRequest, headerOf, PreparedAnswer } from "../http_server/mod.ts";
import { isEc2Version, TOKEN_HEADER, type TreeDirectory } from "../guest_api/mod.ts";
import type { Config } from "../config/config.ts";
import { parseIpv4 } from "../ipam/mod.ts";
import type { Instance } from "../store/mod.ts";
import type { TemplateRenderer, UserDataTarget } from "../user_data/mod.ts";
import type { MetadataDeps } from "./metadata.ts";

/** One kept answer: its body, made into a response on first use. */
export interface KeptAnswer {
  /** The body, as the handler made it. */
  body: string;
  /** Its Content-Type. */
  contentType: string;
  /** User-data: whose, and the renderer's signature of its template when it was rendered. */
  userData: { target: UserDataTarget; signature: string } | null;
  /** The response made of it, on first use (shared by guests with the same short body). */
  answer: PreparedAnswer | null;
}

/** A user-data answer to keep: its body and what it was made from. */
export type KeptUserData = Pick<KeptAnswer, "body" | "contentType" | "userData">;

/** The answers kept for one guest, and what they were made from. */
interface KeptGuest {
  instance: Instance;
  /** The guest's address as a number, for the store's address cache. */
  address: number;
  config: Config;
  renderer: TemplateRenderer;
  phoneHomeUrl: string | null | undefined;
  metadataUrl: string | null | undefined;
  /** The EC2 answers by the path after the version (`/meta-data/instance-id`), the same for every version. */
  ec2: Map<string, KeptAnswer>;
}

/** Guests whose answers are kept; the oldest kept is dropped beyond this (its guest is answered by the handler). */
export const MAX_KEPT_GUESTS = 1024;
/** Tokens remembered as valid; the oldest is forgotten beyond this (it is checked again). */
const MAX_KEPT_TOKENS = 4096;
const TEXT = "text/plain; charset=utf-8";
/** Bodies up to this long are answered by one shared object (one buffer a second for all guests). */
const MAX_SHARED_BODY = 512;
/** Shared answers kept; the oldest is dropped beyond this. */
const MAX_SHARED_ANSWERS = 8192;
/**
 * Targets whose URL pathname is the target itself: no percent escapes, dot
 * segments, query, fragment or backslash for the URL parser to change.
 */
const PLAIN_PATH = /^(\/[A-Za-z0-9_~!$&'()*+,;=:@-][A-Za-z0-9._~!$&'()*+,;=:@-]*|\/)*$/;
/** One segment of a PLAIN_PATH (a version as sent). */
const PLAIN_SEGMENT = /^[A-Za-z0-9_~!$&'()*+,;=:@-][A-Za-z0-9._~!$&'()*+,;=:@-]*$/;

/** A token seen valid, for whom, and until when (the signer's clock). */
interface KeptToken {
  uuid: string;
  address: string;
  expiry: number;
}

/** What the kept answers read besides the handler's dependencies. */
export interface AnswersAheadOptions {
  /** The token signer's clock, once the signer exists. */
  tokenClock: () => (() => number) | null;
  /** Whether `verify_mac = auto` found the neighbour table unreadable (guests are then known by address). */
  neighbourTableUnreadable: () => boolean;
  /** The EC2 `meta-data/` or `dynamic/` tree of an instance under a configuration. */
  tree: (section: "meta-data" | "dynamic", instance: Instance, config: Config) => TreeDirectory;
  /**
   * Renders an instance's user-data under this configuration and renderer,
   * as the handler would, without noting a fetch or logging: null when it has
   * none to keep (no template, or one without a signature); throws when the
   * template fails (the guest's own request then meets the error).
   */
  userData: (instance: Instance, used: Pick<MetadataDeps, "config" | "renderer">) => Promise<KeptUserData | null>;
  /** Notes a request answered from memory: its log line, metrics, boot tracking. */
  served: (source: string, instance: Instance, path: string, userData: boolean, started: number) => void;
}

/** Whether two reads of a record hold the same values (KV gives their keys in the same order). */
function sameRecord(a: Instance, b: Instance): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Every path of a tree below `base` with its answer: directories with and without their trailing slash. */
function treeAnswers(node: TreeDirectory, base: string, out: Map<string, KeptAnswer>): void {
  const listing = node.listing
    ? node.listing.join("\n")
    : [...node.children].map(([name, child]) => typeof child === "string" ? name : `${name}/`).join("\n");
  const answer = { body: listing, contentType: TEXT, userData: null, answer: null };
  out.set(base, answer);
  out.set(`${base}/`, answer);
  for (const [name, child] of node.children) {
    const path = `${base}/${name}`;
    if (!PLAIN_PATH.test(path)) continue;
    if (typeof child === "string") out.set(path, { body: child, contentType: TEXT, userData: null, answer: null });
    else treeAnswers(child, path, out);
  }
}

/** The kept answers of one metadata handler. */
export class AnswersAhead {
  readonly #deps: MetadataDeps;
  readonly #options: AnswersAheadOptions;
  readonly #guests = new Map<string, KeptGuest>();
  readonly #tokens = new Map<string, KeptToken>();
  /** Answers by body (the body string itself is the key: no key to make), shared by the guests that have the same one. */
  readonly #sharedAnswers = new Map<string, { contentType: string; answer: PreparedAnswer }>();
  /** Requests answered from what was kept. */
  served = 0;
  /** Guests whose answers were prepared at their upload (prepareAhead). */
  preparedAhead = 0;

  /** Kept answers for the handler with these dependencies. */
  constructor(deps: MetadataDeps, options: AnswersAheadOptions) {
    this.#deps = deps;
    this.#options = options;
  }

  /** Guests with kept answers. */
  get guests(): number {
    return this.#guests.size;
  }

  /**
   * Prepares a guest's EC2 answers, once per version of what they are made
   * of: called when the handler has answered this instance at `source`, with
   * the configuration and renderer the request used (a reload since then
   * leaves nothing kept).
   */
  prepare(source: string, instance: Instance, used: Pick<MetadataDeps, "config" | "renderer">): void {
    const deps = this.#deps;
    if (used.config !== deps.config || used.renderer !== deps.renderer || !deps.config.mdserver.apis.ec2) return;
    const kept = this.#guests.get(source);
    if (kept !== undefined && this.#current(kept, instance)) return;
    if (kept !== undefined && this.#adopt(kept, instance)) return;
    const address = parseIpv4(source);
    if (address === null) return;
    this.#guests.delete(source);
    const ec2 = new Map<string, KeptAnswer>();
    const sections = { body: "dynamic/\nmeta-data/\nuser-data", contentType: TEXT, userData: null, answer: null };
    ec2.set("", sections);
    ec2.set("/", sections);
    treeAnswers(this.#options.tree("meta-data", instance, deps.config), "/meta-data", ec2);
    treeAnswers(this.#options.tree("dynamic", instance, deps.config), "/dynamic", ec2);
    this.#guests.set(source, {
      instance,
      address,
      config: deps.config,
      renderer: deps.renderer,
      phoneHomeUrl: deps.extras?.phoneHomeUrl,
      metadataUrl: deps.extras?.metadataUrl,
      ec2,
    });
    if (this.#guests.size > MAX_KEPT_GUESTS) this.#guests.delete(this.#guests.keys().next().value!);
  }

  /** Keeps the user-data just rendered for this guest (prepared first), with its template's signature. */
  keepUserData(
    source: string,
    instance: Instance,
    used: Pick<MetadataDeps, "config" | "renderer">,
    kept: KeptUserData,
  ): void {
    this.prepare(source, instance, used);
    const guest = this.#guests.get(source);
    if (guest === undefined || !this.#current(guest, instance)) return;
    guest.ec2.set("/user-data", { ...kept, answer: null });
  }

  /**
   * Prepares a guest's answers before it asks, when its domain is uploaded
   * for a start (the hook's `prepare begin`, some seconds before its
   * cloud-init's first request): its record as the store's address cache
   * now holds it, its EC2 answers and its user-data, rendered as its first
   * request would. The same work as the guest's first requests, done earlier;
   * what changes before the guest asks invalidates it as any kept answer.
   * A template that fails leaves user-data to the handler (its request gets
   * the error, logged and counted then). Never throws.
   */
  async prepareAhead(instance: Instance): Promise<void> {
    const deps = this.#deps;
    const used = { config: deps.config, renderer: deps.renderer };
    if (!used.config.mdserver.apis.ec2 || !instance.ipv4) return;
    try {
      const current = await deps.store.getByIpv4(instance.ipv4);
      if (current === null || current.uuid !== instance.uuid) return;
      this.prepare(current.ipv4, current, used);
      const userData = await this.#options.userData(current, used);
      if (userData !== null) this.keepUserData(current.ipv4, current, used, userData);
      this.preparedAhead++;
    } catch {
      // The guest's own requests go to the handler, which reports what failed.
    }
  }

  /** Remembers a token the handler found valid for this guest, until its expiry. */
  keepToken(token: string, uuid: string, address: string): void {
    const expiry = Number(/^v1\.(\d{1,15})\./.exec(token)?.[1] ?? NaN);
    if (!Number.isFinite(expiry)) return;
    this.#tokens.delete(token);
    this.#tokens.set(token, { uuid, address, expiry });
    if (this.#tokens.size > MAX_KEPT_TOKENS) this.#tokens.delete(this.#tokens.keys().next().value!);
  }

  /**
   * The guest's record read again (the address cache's time to live ran
   * out, as before a boot's token request): when it holds the same values
   * and nothing else changed, its answers stand and are now this record's.
   */
  #adopt(guest: KeptGuest, instance: Instance): boolean {
    if (!this.#current(guest, guest.instance) || !sameRecord(guest.instance, instance)) return false;
    guest.instance = instance;
    return true;
  }

  /** Whether a guest's answers were made from what is in force now (instance given). */
  #current(guest: KeptGuest, instance: Instance): boolean {
    const deps = this.#deps;
    return guest.instance === instance && guest.config === deps.config && guest.renderer === deps.renderer &&
      guest.phoneHomeUrl === deps.extras?.phoneHomeUrl && guest.metadataUrl === deps.extras?.metadataUrl;
  }

  /** The guest server's answerAhead: a kept answer still current, or null (the handler answers). */
  answer(request: AheadRequest, peer: string): PreparedAnswer | null {
    if (request.method !== "GET") return null;
    const started = performance.now();
    const source = peer.startsWith("::ffff:") ? peer.slice(7) : peer;
    const guest = this.#guests.get(source);
    if (guest === undefined) return null;
    const path = request.path;
    const slash = path.indexOf("/", 1);
    const version = slash < 0 ? path.slice(1) : path.slice(1, slash);
    // Every key of `ec2` is a plain path (treeAnswers leaves the others out): the target is plain when its version is.
    const kept = guest.ec2.get(slash < 0 ? "" : path.slice(slash));
    if (kept === undefined || !PLAIN_SEGMENT.test(version) || !isEc2Version(version, guest.config)) return null;
    const deps = this.#deps;
    const instance = deps.store.peekByIpv4(guest.address);
    if (instance === undefined) return null;
    if (instance !== guest.instance && !this.#adopt(guest, instance)) return null;
    if (!this.#current(guest, instance)) return null;
    const { verifyMac, imdsTokens } = deps.config.mdserver;
    if (verifyMac === true) return null;
    if (verifyMac === "auto" && !source.startsWith("127.") && !this.#options.neighbourTableUnreadable()) return null;
    const token = headerOf(request, TOKEN_HEADER);
    if (token === null ? imdsTokens === "required" : !this.#tokenValid(token, instance.uuid, source)) return null;
    if (kept.userData !== null && deps.renderer.userDataSignature(kept.userData.target) !== kept.userData.signature) {
      guest.ec2.delete("/user-data");
      return null;
    }
    this.served++;
    this.#options.served(source, instance, path, kept.userData !== null, started);
    return kept.answer ??= this.#shared(kept);
  }

  /** The answer for a body, one object for every guest that has the same short body (listings, constants). */
  #shared(kept: KeptAnswer): PreparedAnswer {
    if (kept.body.length > MAX_SHARED_BODY) {
      return new PreparedAnswer(200, { "content-type": kept.contentType }, kept.body);
    }
    const shared = this.#sharedAnswers.get(kept.body);
    if (shared !== undefined && shared.contentType === kept.contentType) return shared.answer;
    const answer = new PreparedAnswer(200, { "content-type": kept.contentType }, kept.body);
    // The same body of another content type (rare) is answered on its own.
    if (shared !== undefined) return answer;
    this.#sharedAnswers.set(kept.body, { contentType: kept.contentType, answer });
    if (this.#sharedAnswers.size > MAX_SHARED_ANSWERS) {
      this.#sharedAnswers.delete(this.#sharedAnswers.keys().next().value!);
    }
    return answer;
  }

  #tokenValid(token: string, uuid: string, address: string): boolean {
    const kept = this.#tokens.get(token);
    if (kept === undefined || kept.uuid !== uuid || kept.address !== address) return false;
    const now = this.#options.tokenClock();
    return now !== null && now() < kept.expiry;
  }
}
