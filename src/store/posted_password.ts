/**
 * The password a guest posts itself (OpenStack's `POST
 * /openstack/<version>/password`): cloudbase-init sets a random password
 * when none is given, encrypts it with the instance's first SSH key (RSA,
 * PKCS#1 v1.5) and posts it in base64. The record keeps it once, as Nova
 * does: a second post while one is kept is a conflict. The operator reads it
 * (`mdserver password NAME --show-encrypted`) and decrypts it with the SSH
 * private key, as `nova get-password` does.
 *
 * @module
 */

import type { Instance, PostedPassword } from "./instance.ts";

export type { PostedPassword };

/** Largest post accepted: Nova's bound (4 chunks of 255 characters), room for a 4096-bit RSA key's 684 characters. */
export const MAX_POSTED_PASSWORD_BYTES = 4 * 255;

/** Why a posted body cannot be kept (empty, or not base64), or null. Base64 alone: it is printed to terminals. */
export function postedPasswordProblem(text: string): string | null {
  if (text === "") return "the posted password is empty";
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return "the posted password is not base64 text";
  return null;
}

/** What became of a post: kept, refused as one is kept already, or no such instance. */
export type PostOutcome = "kept" | "conflict" | "unknown";

/** The record keeping the guest's post, or null when it keeps one already (a post is kept once). */
export function withPostedPassword(instance: Instance, encrypted: string, now: Date): Instance | null {
  if (instance.postedPassword) return null;
  return { ...instance, postedPassword: { encrypted, postedAt: now.toISOString() } };
}
