/**
 * The table of mdserver's commands: for each, its permission set, synopsis,
 * summary, option table (node:util parseArgs) and an example. The parser,
 * the help text, the `mdserver` wrapper and docs/cli.md all read it.
 *
 * @module
 */

/** One option of a command, as parseArgs takes it plus its help. */
export interface OptionSpec {
  /** "string" takes a value, "boolean" is a flag. */
  type: "string" | "boolean";
  /** A one-letter alias (`-c`). */
  short?: string;
  /** The value's name in the help (`FILE`). */
  value?: string;
  /** One line of help. */
  help: string;
}

/** One command of the table. */
export interface CommandSpec {
  /** The command word. */
  name: string;
  /** The deno.json permission set it runs under. */
  permissionSet: string;
  /** Positional arguments in the synopsis (`INSTANCE`, `[CONFIG]`); `repeat`: the last may be given many times. */
  positionals: { name: string; required: boolean; repeat?: boolean }[];
  /** One line saying what it does. */
  summary: string;
  /** Its options (besides --help). */
  options: Record<string, OptionSpec>;
  /** An example command line. */
  example: string;
}

const config: OptionSpec = {
  type: "string",
  short: "c",
  value: "FILE",
  help: "the configuration (default: $MDSERVER_CONFIG, else /etc/mdserver/mdserver.conf)",
};
const json: OptionSpec = { type: "boolean", help: "print JSON (snake_case keys)" };
const instance = { name: "INSTANCE", required: true };
const instanceHelp = "INSTANCE is a name, UUID, instance-id, MAC or address";

/** Every command, in the order the help lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "serve",
    permissionSet: "serve",
    positionals: [{ name: "CONFIG", required: false }],
    summary: "run the metadata service (md_server's `mdserver CONFIG` form works too)",
    options: { config },
    example: "mdserver serve --config /etc/mdserver/mdserver.conf",
  },
  {
    name: "check-config",
    permissionSet: "check",
    positionals: [{ name: "CONFIG", required: false }],
    summary: "print the effective configuration, or every error in it",
    options: { config },
    example: "mdserver check-config /etc/mdserver/mdserver.conf",
  },
  {
    name: "list",
    permissionSet: "ctl",
    positionals: [],
    summary: "list instances: name, address, MAC, instance-id, state, since when, the host it runs on and the " +
      "current boot (docs/boot-events.md)",
    options: { config, json, name: { type: "boolean", help: "print the names only, one a line" } },
    example: "mdserver list --name",
  },
  {
    name: "show",
    permissionSet: "ctl",
    positionals: [instance],
    summary: `show one instance; ${instanceHelp}`,
    options: { config, json },
    example: "mdserver show web01",
  },
  {
    name: "delete",
    permissionSet: "ctl",
    positionals: [instance],
    summary: "remove an instance, releasing its address and DNS/DHCP records",
    options: { config },
    example: "mdserver delete web01",
  },
  {
    name: "user-data",
    permissionSet: "ctl",
    positionals: [instance],
    summary: "print the user-data the guest receives",
    options: { config },
    example: "mdserver user-data web01",
  },
  {
    name: "vendor-data",
    permissionSet: "ctl",
    positionals: [instance],
    summary: "print the vendor-data the guest receives",
    options: { config },
    example: "mdserver vendor-data web01",
  },
  {
    name: "meta-data",
    permissionSet: "ctl",
    positionals: [instance],
    summary: "print the EC2 meta-data tree of an instance as JSON",
    options: { config },
    example: "mdserver meta-data web01",
  },
  {
    name: "known-hosts",
    permissionSet: "ctl",
    positionals: [],
    summary: "print an ssh known_hosts file from the host keys guests phoned home",
    options: { config },
    example: "mdserver known-hosts >> ~/.ssh/known_hosts",
  },
  {
    name: "nwfilter",
    permissionSet: "ctl",
    positionals: [instance],
    summary: "print libvirt's clean-traffic <filterref> for the domain's <interface>, so the guest can send " +
      "only from its own MAC and address",
    options: { config },
    example: "mdserver nwfilter web01",
  },
  {
    name: "gc",
    permissionSet: "ctl",
    positionals: [],
    summary: "remove instances whose domains are gone (without --virsh: stopped for longer than --older-than)",
    options: {
      config,
      virsh: { type: "boolean", help: "remove the domains libvirt no longer lists (virsh list --all --name)" },
      connect: { type: "string", value: "URI", help: "the libvirt connection virsh uses" },
      "older-than": {
        type: "string",
        value: "AGE",
        help: "only instances unchanged for longer (units s m h d w; default 7d)",
      },
      "dry-run": { type: "boolean", help: "print what would go, remove nothing" },
      force: { type: "boolean", help: "go on when virsh lists no domain at all" },
    },
    example: "mdserver gc --virsh --dry-run",
  },
  {
    name: "smbios",
    permissionSet: "ctl",
    positionals: [{ name: "DOMAIN", required: false }],
    summary: "print the libvirt <sysinfo> snippet that makes a stock cloud image find mdserver",
    options: {
      config,
      datasource: {
        type: "string",
        value: "nocloud|openstack",
        help: "which datasource to point at (default nocloud)",
      },
      xml: {
        type: "boolean",
        help: "print only the <sysinfo> element (the domain's <os> needs <smbios mode='sysinfo'/>)",
      },
    },
    example: "mdserver smbios web01 --xml",
  },
  {
    name: "register",
    permissionSet: "ctl",
    positionals: [{ name: "DOMAIN", required: true, repeat: true }],
    summary: "register defined domains before their first start (address, instance-id; then password works)",
    options: {
      config,
      connect: { type: "string", value: "URI", help: "the libvirt connection virsh uses (virsh dumpxml)" },
    },
    example: "mdserver register web01 && mdserver password web01 && virsh start web01",
  },
  {
    name: "password",
    permissionSet: "ctl",
    positionals: [instance],
    summary: "generate a guest's password and print it once (or set it from stdin, show the guest's, or remove them)",
    options: {
      config,
      stdin: { type: "boolean", help: "set the first line of standard input instead of generating one" },
      "show-encrypted": {
        type: "boolean",
        help: "print the password the guest posted (base64, encrypted with its SSH key; docs/configdrive.md)",
      },
      remove: { type: "boolean", help: "remove the password and the one the guest posted" },
    },
    example: "mdserver password web01",
  },
  {
    name: "configdrive",
    permissionSet: "ctl",
    positionals: [{ name: "DOMAIN", required: true }],
    summary: "print the <disk> element that gives a domain (name or UUID) a config drive mdserver keeps current",
    options: {
      config,
      dev: { type: "string", value: "DEV", help: "the target device (default sdb)" },
      bus: { type: "string", value: "BUS", help: "the bus (default sata; ide on an i440fx machine)" },
      connect: { type: "string", value: "URI", help: "the libvirt connection virsh uses to find the UUID" },
    },
    example: "mdserver configdrive web01",
  },
  {
    name: "seed-iso",
    permissionSet: "seed-iso",
    positionals: [instance],
    summary: "write a ConfigDrive (config-2) or NoCloud (cidata) seed image of an instance",
    options: {
      config,
      format: { type: "string", value: "configdrive|nocloud", help: "the image kind (required)" },
      output: { type: "string", short: "o", value: "FILE", help: "the image file to write (required)" },
    },
    example: "mdserver seed-iso web01 --format nocloud -o /var/lib/libvirt/images/web01-seed.iso",
  },
  {
    name: "import-md-server",
    permissionSet: "import",
    positionals: [{ name: "DB", required: false }],
    summary: "import md_server's database (default: db_file), keeping names, UUIDs, MACs, addresses and instance-ids",
    options: {
      config,
      "new-instance-ids": { type: "boolean", help: "derive instance-ids from UUIDs instead of keeping md_server's" },
    },
    example: "mdserver import-md-server /var/lib/mdserver/mds_db.json",
  },
  {
    name: "migrate-store",
    permissionSet: "import",
    positionals: [{ name: "KV_FILE", required: false }],
    summary: "move this host's instances from its KV file (default: kv_file) into the etcd store of [store], " +
      "keeping addresses, instance-ids, states and host keys",
    options: { config },
    example: "mdserver migrate-store /var/lib/mdserver/mdserver.kv",
  },
  {
    name: "install",
    permissionSet: "install",
    positionals: [],
    summary: "install the configuration (kept if present), the systemd unit, network XML, hook and this command",
    options: {
      root: { type: "string", value: "DIR", help: "install under DIR instead of / (packaging, tests)" },
      force: { type: "boolean", help: "replace a libvirt hook mdserver did not write" },
    },
    example: "mdserver install --root /tmp/pkg",
  },
  {
    name: "install-hook",
    permissionSet: "install",
    positionals: [],
    summary: "install the libvirt qemu hook: the compiled hook if built, else a wrapper running hook.ts",
    options: {
      path: { type: "string", value: "P", help: "where the hook goes (default /etc/libvirt/hooks/qemu)" },
      binary: {
        type: "string",
        value: "B",
        help: "the compiled hook to install (default dist/mdserver-hook if built)",
      },
      root: { type: "string", value: "DIR", help: "install under DIR instead of /" },
      force: { type: "boolean", help: "replace a hook mdserver did not write" },
    },
    example: "mdserver install-hook --path /tmp/hooks/qemu",
  },
  {
    name: "reload",
    permissionSet: "ctl",
    positionals: [],
    summary: "make the running service read its configuration, keys and templates again",
    options: { config },
    example: "mdserver reload",
  },
  {
    name: "wait",
    permissionSet: "ctl",
    positionals: [{ name: "INSTANCE", required: true, repeat: true }],
    summary:
      "wait until each instance's current boot has ended: exit 0 all done, 1 any degraded or failed, 124 timeout",
    options: {
      config,
      timeout: { type: "string", value: "S", help: "give up after S seconds, exit 124 (default 900)" },
    },
    example: "mdserver wait web01 web02 --timeout 600   # after virsh start; then ssh",
  },
  {
    name: "watch",
    permissionSet: "ctl",
    positionals: [],
    summary:
      "show every instance's current boot live: a line each, redrawn on a terminal, a line per change when piped",
    options: { config },
    example: "mdserver watch",
  },
];

/** The command of that name, or undefined. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((command) => command.name === name);
}
