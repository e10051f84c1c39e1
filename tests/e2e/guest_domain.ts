/**
 * The libvirt domain XML of an end-to-end guest, as `virsh dumpxml` shows
 * it for a direct-kernel-boot domain on the `mds` network, and therefore
 * as libvirt hands it to the qemu hook on `prepare begin`.
 *
 * @module
 */

/** The guest a domain describes. */
export interface GuestDomain {
  name: string;
  uuid: string;
  /** MAC of the interface on the `mds` network, lower case. */
  mac: string;
  memoryMiB: number;
  vcpus: number;
  /** Host paths of the kernel, initrd and disk. */
  kernel: string;
  initrd: string;
  disk: string;
  diskFormat: "raw" | "qcow2";
  kernelCommandLine: string;
  /** SMBIOS system serial (`<sysinfo type='smbios'>`), e.g. NoCloud's seed; null for none. */
  smbiosSerial: string | null;
  /** Tap device libvirt would have created ("vnet0"). */
  tap: string;
  /** Serial console log file. */
  consoleLog: string;
}

/** A random locally administered MAC in libvirt's 52:54:00 range. */
export function randomMac(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(3));
  return ["52", "54", "00", ...[...bytes].map((byte) => byte.toString(16).padStart(2, "0"))].join(":");
}

/** The domain XML libvirt would give the hook for this guest. */
export function guestDomainXml(guest: GuestDomain): string {
  const sysinfo = guest.smbiosSerial === null ? "" : `  <sysinfo type='smbios'>
    <system>
      <entry name='manufacturer'>mdserver e2e</entry>
      <entry name='product'>KVM guest</entry>
      <entry name='serial'>${escapeXml(guest.smbiosSerial)}</entry>
    </system>
  </sysinfo>
`;
  const smbios = guest.smbiosSerial === null ? "" : "    <smbios mode='sysinfo'/>\n";
  const memoryKiB = guest.memoryMiB * 1024;
  return `<domain type='kvm' id='1'>
  <name>${escapeXml(guest.name)}</name>
  <uuid>${guest.uuid}</uuid>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://debian.org/debian/12"/>
    </libosinfo:libosinfo>
    <mdserver:instance xmlns:mdserver="https://github.com/sjjf/md_server">
      <mdserver:role>e2e</mdserver:role>
    </mdserver:instance>
  </metadata>
  <memory unit='KiB'>${memoryKiB}</memory>
  <currentMemory unit='KiB'>${memoryKiB}</currentMemory>
  <vcpu placement='static'>${guest.vcpus}</vcpu>
  <resource>
    <partition>/machine</partition>
  </resource>
${sysinfo}  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <kernel>${escapeXml(guest.kernel)}</kernel>
    <initrd>${escapeXml(guest.initrd)}</initrd>
    <cmdline>${escapeXml(guest.kernelCommandLine)}</cmdline>
    <boot dev='hd'/>
${smbios}  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='host-model' check='partial'/>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='${guest.diskFormat}'/>
      <source file='${escapeXml(guest.disk)}' index='1'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <controller type='pci' index='0' model='pci-root'>
      <alias name='pci.0'/>
    </controller>
    <interface type='network'>
      <mac address='${guest.mac}'/>
      <source network='mds' portid='${crypto.randomUUID()}' bridge='br-mds'/>
      <target dev='${escapeXml(guest.tap)}'/>
      <model type='virtio'/>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <serial type='file'>
      <source path='${escapeXml(guest.consoleLog)}'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
      <alias name='serial0'/>
    </serial>
    <console type='file'>
      <source path='${escapeXml(guest.consoleLog)}'/>
      <target type='serial' port='0'/>
      <alias name='serial0'/>
    </console>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
      <alias name='rng0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/>
    </rng>
  </devices>
  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+64055:+64055</label>
    <imagelabel>+64055:+64055</imagelabel>
  </seclabel>
</domain>
`;
}

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll("'", "&apos;")
    .replaceAll('"', "&quot;");
}
