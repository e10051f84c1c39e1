import assert from "node:assert/strict";
import {
  type DomainInfo,
  findNetworkInterface,
  InvalidDomainXmlError,
  MAX_DOMAIN_XML_BYTES,
  parseDomainXml,
} from "./mod.ts";

// `virsh dumpxml db01` of a running q35 guest made by virt-install, with
// md_server's flat metadata and the wrapped form under another prefix.
const RUNNING_DOMAIN = `<domain type='kvm' id='7'>
  <name>db01</name>
  <uuid>0B2C4E6A-8D1F-4A3B-9C5D-7E9F1A2B3C4D</uuid>
  <description>Primary database &amp; cache</description>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://debian.org/debian/12"/>
    </libosinfo:libosinfo>
    <mdserver:userdata_prefix xmlns:mdserver="https://github.com/sjjf/md_server">db</mdserver:userdata_prefix>
    <ops:instance xmlns:ops="https://example.org/mdserver/1">
      <ops:role>database</ops:role>
      <ops:owner>ops &amp; dba</ops:owner>
      <ops:tags>
        <ops:tag name="env">prod</ops:tag>
        <tag name="tier">backend</tag>
      </ops:tags>
    </ops:instance>
  </metadata>
  <memory unit='KiB'>4194304</memory>
  <currentMemory unit='KiB'>4194304</currentMemory>
  <vcpu placement='static'>4</vcpu>
  <resource>
    <partition>/machine</partition>
  </resource>
  <sysinfo type='smbios'>
    <system>
      <entry name='serial'>ds=nocloud-net;s=http://169.254.169.254/nocloud/</entry>
    </system>
  </sysinfo>
  <os>
    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
    <boot dev='hd'/>
    <smbios mode='sysinfo'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='host-passthrough' check='none' migratable='on'/>
  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
    <timer name='pit' tickpolicy='delay'/>
    <timer name='hpet' present='no'/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/db01.qcow2' index='2'/>
      <backingStore type='file' index='3'>
        <format type='qcow2'/>
        <source file='/var/lib/libvirt/images/debian-12-genericcloud-amd64.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/db01-seed.iso' index='1'/>
      <backingStore/>
      <target dev='sda' bus='sata'/>
      <readonly/>
      <alias name='sata0-0-0'/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <controller type='usb' index='0' model='qemu-xhci' ports='15'>
      <alias name='usb'/>
      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </controller>
    <controller type='pci' index='0' model='pcie-root'>
      <alias name='pcie.0'/>
    </controller>
    <interface type='network'>
      <mac address='52:54:00:0a:1b:2c'/>
      <source network='default' portid='3c1f0b7e-2d4a-4f6b-8e9c-0a1b2c3d4e5f' bridge='virbr0'/>
      <target dev='vnet12'/>
      <model type='virtio'/>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:3D:4E:5F'/>
      <source network='mds' portid='9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d' bridge='mds0'/>
      <target dev='vnet13'/>
      <model type='e1000e'/>
      <alias name='net1'/>
      <address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/>
    </interface>
    <serial type='pty'>
      <source path='/dev/pts/3'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
      <alias name='serial0'/>
    </serial>
    <console type='pty' tty='/dev/pts/3'>
      <source path='/dev/pts/3'/>
      <target type='serial' port='0'/>
      <alias name='serial0'/>
    </console>
    <channel type='unix'>
      <source mode='bind' path='/run/libvirt/qemu/channel/7-db01/org.qemu.guest_agent.0'/>
      <target type='virtio' name='org.qemu.guest_agent.0' state='disconnected'/>
      <alias name='channel0'/>
      <address type='virtio-serial' controller='0' bus='0' port='1'/>
    </channel>
    <input type='mouse' bus='ps2'>
      <alias name='input0'/>
    </input>
    <graphics type='vnc' port='5900' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <audio id='1' type='none'/>
    <video>
      <model type='virtio' heads='1' primary='yes'/>
      <alias name='video0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>
    </video>
    <memballoon model='virtio'>
      <alias name='balloon0'/>
      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
    </memballoon>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
      <alias name='rng0'/>
      <address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x0'/>
    </rng>
  </devices>
  <seclabel type='dynamic' model='apparmor' relabel='yes'>
    <label>libvirt-0b2c4e6a-8d1f-4a3b-9c5d-7e9f1a2b3c4d</label>
    <imagelabel>libvirt-0b2c4e6a-8d1f-4a3b-9c5d-7e9f1a2b3c4d</imagelabel>
  </seclabel>
</domain>
`;

/** A minimal domain with the given extra XML inside <domain>. */
function domain(inner: string, name = "vm1"): string {
  return `<domain type='kvm'><name>${name}</name>` +
    `<uuid>6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b</uuid>${inner}</domain>`;
}

Deno.test("parseDomainXml() reads a running domain as virsh dumpxml prints it", () => {
  const expected: DomainInfo = {
    name: "db01",
    uuid: "0b2c4e6a-8d1f-4a3b-9c5d-7e9f1a2b3c4d",
    vcpus: 4,
    memoryMiB: 4096,
    interfaces: [
      {
        mac: "52:54:00:0a:1b:2c",
        network: "default",
        bridge: "virbr0",
        type: "network",
        model: "virtio",
      },
      {
        mac: "52:54:00:3d:4e:5f",
        network: "mds",
        bridge: "mds0",
        type: "network",
        model: "e1000e",
      },
    ],
    metadata: {
      userdata_prefix: "db",
      role: "database",
      owner: "ops & dba",
    },
    tags: { env: "prod", tier: "backend" },
    cdromFiles: ["/var/lib/libvirt/images/db01-seed.iso"],
  };
  assert.deepEqual(parseDomainXml(RUNNING_DOMAIN), expected);
});

Deno.test("parseDomainXml() reads config/sample-domain.xml", async () => {
  const xml = await Deno.readTextFile(
    new URL("../../config/sample-domain.xml", import.meta.url),
  );
  assert.deepEqual(parseDomainXml(xml), {
    name: "web01",
    uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
    vcpus: 2,
    memoryMiB: 2048,
    interfaces: [{
      mac: "52:54:00:12:34:56",
      network: "mds",
      bridge: null,
      type: "network",
      model: "virtio",
    }],
    metadata: { role: "web" },
    tags: { env: "dev" },
    cdromFiles: [],
  });
});

Deno.test("findNetworkInterface() picks the first interface on the named network", () => {
  const info = parseDomainXml(domain(`<devices>
    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>
    <interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='mds'/></interface>
    <interface type='network'><mac address='52:54:00:00:00:03'/><source network='mds'/></interface>
    <interface type='network'><mac address='52:54:00:00:00:04'/><source network='mds'/></interface>
  </devices>`));
  assert.equal(findNetworkInterface(info, "mds")?.mac, "52:54:00:00:00:03");
  assert.equal(findNetworkInterface(info, "default")?.mac, "52:54:00:00:00:01");
  assert.equal(findNetworkInterface(info, "nosuch"), undefined);
});

Deno.test("parseDomainXml() skips an interface without a MAC", () => {
  const info = parseDomainXml(domain(`<devices>
    <interface type='network'><source network='mds'/></interface>
    <interface type='network'><mac address='52:54:00:00:00:02'/><source network='mds'/></interface>
  </devices>`));
  assert.deepEqual(info.interfaces.map((i) => i.mac), ["52:54:00:00:00:02"]);
});

Deno.test("parseDomainXml() converts every libvirt memory unit to MiB", () => {
  const cases: [string, number | null][] = [
    ["<memory>1048576</memory>", 1024],
    ["<memory unit='KiB'>1048576</memory>", 1024],
    ["<memory unit='k'>2048</memory>", 2],
    ["<memory unit='b'>1073741824</memory>", 1024],
    ["<memory unit='bytes'>1073741824</memory>", 1024],
    ["<memory unit='MiB'>512</memory>", 512],
    ["<memory unit='M'>512</memory>", 512],
    ["<memory unit='GiB'>2</memory>", 2048],
    ["<memory unit='G'>2</memory>", 2048],
    ["<memory unit='TiB'>1</memory>", 1048576],
    ["<memory unit='GB'>1</memory>", 953],
    ["<memory unit='parsecs'>1</memory>", null],
    ["<memory unit='KiB'>lots</memory>", null],
    ["", null],
  ];
  for (const [xml, mib] of cases) {
    assert.equal(parseDomainXml(domain(xml)).memoryMiB, mib, xml);
  }
});

Deno.test("parseDomainXml() reads vcpus in both forms and tolerates their absence", () => {
  assert.equal(parseDomainXml(domain("<vcpu>3</vcpu>")).vcpus, 3);
  assert.equal(
    parseDomainXml(domain("<vcpu placement='static' current='1'>2</vcpu>"))
      .vcpus,
    2,
  );
  assert.equal(parseDomainXml(domain("")).vcpus, null);
  assert.equal(parseDomainXml(domain("<vcpu>two</vcpu>")).vcpus, null);
});

Deno.test("parseDomainXml() takes mdserver metadata only, with safe keys", () => {
  const info = parseDomainXml(domain(`<metadata>
    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://ubuntu.com/ubuntu/24.04"/>
    </libosinfo:libosinfo>
    <other:role xmlns:other="https://example.org/inventory">ignored</other:role>
    <mdserver:userdata_prefix xmlns:mdserver="https://github.com/sjjf/md_server">  web
    </mdserver:userdata_prefix>
    <x:hostname_prefix xmlns:x="http://example/mdserver/1">edge-</x:hostname_prefix>
    <mdserver:über xmlns:mdserver="https://github.com/sjjf/md_server">skipped</mdserver:über>
    <y:script xmlns:y="urn:mdserver"><![CDATA[echo "a & b" <ok>]]></y:script>
  </metadata>`));
  assert.deepEqual(info.metadata, {
    userdata_prefix: "web",
    hostname_prefix: "edge-",
    script: 'echo "a & b" <ok>',
  });
  assert.deepEqual(info.tags, {});
});

Deno.test("parseDomainXml() reads tags at the top of <metadata> without making them a key", () => {
  const info = parseDomainXml(domain(`<metadata>
    <mdserver:tags xmlns:mdserver="https://github.com/sjjf/md_server">
      <mdserver:tag name="env">prod</mdserver:tag>
      <tag name="team">web</tag>
      <tag>no name</tag>
      <tag name="a/b">bad name</tag>
    </mdserver:tags>
  </metadata>`));
  assert.deepEqual(info.tags, { env: "prod", team: "web" });
  assert.deepEqual(info.metadata, {});
});

Deno.test("parseDomainXml() rejects a DOCTYPE", () => {
  assert.throws(
    () => parseDomainXml(`<?xml version="1.0"?>\n<!DOCTYPE domain>\n${domain("")}`),
    {
      name: "InvalidDomainXmlError",
      message: 'domain XML must not contain a DOCTYPE or ENTITY declaration: found "<!DOCTYPE" on line 2',
    },
  );
  assert.throws(() => parseDomainXml(`<!doctype domain>${domain("")}`), {
    name: "InvalidDomainXmlError",
    message: /must not contain a DOCTYPE/,
  });
});

Deno.test("parseDomainXml() rejects an ENTITY declaration anywhere", () => {
  assert.throws(
    () => parseDomainXml(domain(`<!-- <!ENTITY x "y"> -->`)),
    { name: "InvalidDomainXmlError", message: /found "<!ENTITY" on line 1/ },
  );
});

Deno.test("parseDomainXml() rejects a billion-laughs document before expanding it", () => {
  const lols = Array.from(
    { length: 9 },
    (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`,
  ).join("\n");
  const xml = `<?xml version="1.0"?>
<!DOCTYPE domain [
  <!ENTITY lol0 "lol">
  ${lols}
]>
<domain><name>&lol9;</name><uuid>6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b</uuid></domain>`;
  assert.throws(() => parseDomainXml(xml), {
    name: "InvalidDomainXmlError",
    message: /must not contain a DOCTYPE/,
  });
});

Deno.test("parseDomainXml() rejects a reference to an undeclared entity or a bare &", () => {
  assert.throws(() => parseDomainXml(domain("", "&lol9;")), {
    name: "InvalidDomainXmlError",
    message: /unknown entity or bare "&" in "&lol9;"/,
  });
  assert.throws(
    () => parseDomainXml(domain("<devices><interface type='a & b'/></devices>")),
    { name: "InvalidDomainXmlError", message: /bare "&"/ },
  );
});

Deno.test("parseDomainXml() decodes predefined entities and character references", () => {
  const info = parseDomainXml(domain("", "db&#45;01&#x2d;&lt;x&gt;"));
  assert.equal(info.name, "db-01-<x>");
});

Deno.test("parseDomainXml() rejects malformed XML with its line number", () => {
  assert.throws(
    () =>
      parseDomainXml(
        "<domain>\n  <name>vm1</name>\n  <uuid>6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b\n</domain>",
      ),
    {
      name: "InvalidDomainXmlError",
      message: /^Cannot parse domain XML: line 4, column 1: Expected closing tag 'uuid'/,
    },
  );
  assert.throws(() => parseDomainXml(""), {
    name: "InvalidDomainXmlError",
    message: /^Cannot parse domain XML: line 1/,
  });
  assert.throws(() => parseDomainXml("<".repeat(100_000)), (error) => {
    // The parser quotes the bad input; the message must stay one short line.
    assert(error instanceof InvalidDomainXmlError);
    assert.match(error.message, /^Cannot parse domain XML: line 1, /);
    assert(error.message.length < 300 && !error.message.includes("\n"));
    return true;
  });
  assert.throws(() => parseDomainXml(`${domain("")}<domain/>`), {
    name: "InvalidDomainXmlError",
    message: /more than one root element/,
  });
});

Deno.test("parseDomainXml() rejects a document that is not a domain", () => {
  assert.throws(
    () =>
      parseDomainXml(
        "<network><name>default</name><uuid>6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b</uuid></network>",
      ),
    {
      name: "InvalidDomainXmlError",
      message: "domain XML has root element <network>, expected <domain>",
    },
  );
});

Deno.test("parseDomainXml() rejects a missing or empty name", () => {
  assert.throws(
    () =>
      parseDomainXml(
        "<domain><uuid>6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b</uuid></domain>",
      ),
    { name: "InvalidDomainError", message: "domain XML has no <name> element" },
  );
  assert.throws(() => parseDomainXml(domain("", "  ")), {
    name: "InvalidDomainError",
    message: "domain XML has an empty <name>",
  });
});

Deno.test("parseDomainXml() rejects names that cannot be file or DNS names", () => {
  assert.throws(() => parseDomainXml(domain("", "web/01")), {
    name: "InvalidDomainError",
    message: 'domain name "web/01" contains "/", but it becomes a file name and a DNS name',
  });
  for (const name of [".", ".."]) {
    assert.throws(() => parseDomainXml(domain("", name)), {
      name: "InvalidDomainError",
      message: `domain name "${name}" is not allowed, as it becomes a file name and a DNS name`,
    });
  }
  assert.throws(() => parseDomainXml(domain("", "web&#9;01")), {
    name: "InvalidDomainError",
    message: /^domain name "web\\t01" contains a control character/,
  });
  assert.throws(() => parseDomainXml(domain("", "a".repeat(254))), {
    name: "InvalidDomainError",
    message: /is 254 characters long: at most 253 are allowed/,
  });
  assert.equal(
    parseDomainXml(domain("", ` ${"a".repeat(253)} `)).name,
    "a".repeat(253),
  );
});

Deno.test("parseDomainXml() rejects a missing or invalid uuid", () => {
  assert.throws(() => parseDomainXml("<domain><name>vm1</name></domain>"), {
    name: "InvalidDomainError",
    message: "domain XML has no <uuid> element",
  });
  assert.throws(
    () =>
      parseDomainXml(
        "<domain><name>vm1</name><uuid>6f1a3c2e-5b7d-4e8f-9a0b</uuid></domain>",
      ),
    {
      name: "InvalidDomainError",
      message: /^domain uuid "6f1a3c2e-5b7d-4e8f-9a0b" is not a valid UUID/,
    },
  );
});

Deno.test("parseDomainXml() normalises a uuid written without dashes", () => {
  const info = parseDomainXml(
    "<domain><name>vm1</name><uuid>6F1A3C2E5B7D4E8F9A0B1C2D3E4F5A6B</uuid></domain>",
  );
  assert.equal(info.uuid, "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b");
});

Deno.test("parseDomainXml() rejects a bad MAC address", () => {
  assert.throws(
    () =>
      parseDomainXml(domain(`<devices>
        <interface type='network'><mac address='52:54:00:00:00:01'/></interface>
        <interface type='network'><mac address='52:54:00:zz:00:01'/></interface>
      </devices>`)),
    {
      name: "InvalidDomainError",
      message:
        'interface 2 of the domain has MAC address "52:54:00:zz:00:01", which is not six hex pairs such as "52:54:00:12:34:56"',
    },
  );
});

Deno.test("parseDomainXml() rejects a document larger than 1 MiB", () => {
  // Fewer characters than the limit, but two UTF-8 bytes each.
  const padding = `<!-- ${"é".repeat(MAX_DOMAIN_XML_BYTES / 2)} -->`;
  assert.throws(() => parseDomainXml(domain(padding)), {
    name: "InvalidDomainXmlError",
    message: /^domain XML is too large: \d+ bytes, at most 1048576 are accepted/,
  });
  assert.throws(() => parseDomainXml(" ".repeat(MAX_DOMAIN_XML_BYTES + 1)), {
    name: "InvalidDomainXmlError",
    message: /^domain XML is too large: over 1048577 bytes/,
  });
});

Deno.test("parseDomainXml() rejects nesting deeper than 64 levels", () => {
  const deep = (levels: number) =>
    domain(
      `<metadata>${"<a>".repeat(levels)}${"</a>".repeat(levels)}</metadata>`,
    );
  assert.equal(parseDomainXml(deep(62)).name, "vm1");
  assert.throws(() => parseDomainXml(deep(63)), {
    name: "InvalidDomainXmlError",
    message: "domain XML is nested too deeply: more than 64 levels at line 1",
  });
  assert.throws(() => parseDomainXml(deep(100_000)), {
    name: "InvalidDomainXmlError",
    message: /nested too deeply/,
  });
});

Deno.test("parseDomainXml() lists the source files of CD-ROM drives, not of disks or empty drives", () => {
  const info = parseDomainXml(domain(`<devices>
    <disk type='file' device='disk'><source file='/var/lib/libvirt/images/web01.qcow2'/><target dev='vda'/></disk>
    <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>
    <disk type='file' device='cdrom'>
      <source file=' /var/lib/mdserver/seeds/6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b.iso ' startupPolicy='optional'/>
      <target dev='sdb' bus='sata'/><readonly/>
    </disk>
  </devices>`));
  assert.deepEqual(info.cdromFiles, ["/var/lib/mdserver/seeds/6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b.iso"]);
});
