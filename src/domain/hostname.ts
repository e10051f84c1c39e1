/**
 * How a libvirt domain name becomes a host name. Domain names may hold any
 * character; host names are DNS labels (RFC 1123): letters, digits and "-",
 * 1 to 63 characters, not starting or ending with "-".
 *
 * The mapping: the name is split into runs of letters and digits (any
 * script); a run with non-ASCII letters becomes its IDNA/punycode form
 * ("über" → "xn--ber-goa"), so different non-ASCII names keep different
 * labels; the runs are lower-cased and joined with one "-" (so ".", "_",
 * spaces and "--" all become one "-"); the result is cut to 63 characters
 * without a trailing "-". A name with no letter or digit becomes "host".
 *
 * @module
 */

/** The DNS label for a domain name, e.g. "Web_01.prod" → "web-01-prod". */
export function hostLabel(domainName: string): string {
  const label = domainName.toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .map(asciiRun)
    .filter((run) => run !== "")
    .join("-")
    .slice(0, 63)
    .replace(/-+$/, "");
  return label === "" ? "host" : label;
}

/** A run of letters and digits as ASCII: itself, or its punycode form. */
function asciiRun(run: string): string {
  if (/^[a-z0-9]*$/.test(run)) return run;
  try {
    const host = new URL(`http://${run}.invalid/`).hostname;
    const ascii = host.slice(0, -".invalid".length);
    return /^[a-z0-9-]+$/.test(ascii) ? ascii : "";
  } catch {
    return "";
  }
}

/** The names an instance answers to, following md_server's prefix/domain/entry_order. */
export interface HostNames {
  /** The bare label. */
  base: string;
  /** `<prefix><base>`, or the base when no prefix is set. */
  prefixed: string;
  /** `<prefixed>.<domain>`, or null when no domain is set. */
  fqdn: string | null;
}

/** Names for a domain under a prefix and domain (either may be null). */
export function hostNames(domainName: string, prefix: string | null, domain: string | null): HostNames {
  const base = hostLabel(domainName);
  const prefixed = prefix ? hostLabel(prefix + base) : base;
  return { base, prefixed, fqdn: domain ? `${prefixed}.${domain.toLowerCase()}` : null };
}

/** The names in md_server's `entry_order` (base, prefix, domain|fqdn), duplicates dropped. */
export function orderedNames(names: HostNames, entryOrder: string[]): string[] {
  const out: string[] = [];
  for (const item of entryOrder) {
    const name = item === "base" ? names.base : item === "prefix" ? names.prefixed : names.fqdn;
    if (name && !out.includes(name)) out.push(name);
  }
  return out;
}
