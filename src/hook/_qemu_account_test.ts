import assert from "node:assert/strict";
import { qemuAccount, qemuConfAccount } from "./_qemu_account.ts";

const PASSWD = [
  "root:x:0:0:root:/root:/bin/bash",
  "libvirt-qemu:x:64055:110:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin",
  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
  "100:x:4242:4242::/:/usr/sbin/nologin",
].join("\n");
const GROUP = ["root:x:0:", "kvm:x:110:", "libvirt-qemu:x:64055:libvirt-qemu", "nogroup:x:65534:"].join("\n");
const DEBIAN_CONF = '#       user = "qemu"   # A user named "qemu"\n#user = "libvirt-qemu"\n#group = "libvirt-qemu"\n';

Deno.test("qemuConfAccount() reads set lines only, the last one winning", () => {
  assert.deepEqual(qemuConfAccount(DEBIAN_CONF), { user: null, group: null });
  assert.deepEqual(qemuConfAccount('user = "a"\n  user="b"\n# user = "c"\ngroup = "+0" # root\n'), {
    user: "b",
    group: "+0",
  });
});

Deno.test("qemuAccount() auto on Debian's qemu.conf is libvirt's built-in libvirt-qemu:libvirt-qemu, not its primary group", () => {
  const account = qemuAccount("auto", { qemuConf: DEBIAN_CONF, passwd: PASSWD, group: GROUP });
  assert.deepEqual(account, { uid: 64055, gid: 64055, label: "libvirt-qemu:libvirt-qemu" });
  assert.deepEqual(qemuAccount("auto", { qemuConf: null, passwd: PASSWD, group: GROUP }), account);
});

Deno.test("qemuAccount() reads +N as an id and digits as a name first, as libvirt does", () => {
  const conf = 'user = "+0"\ngroup = "110"\n';
  assert.deepEqual(qemuAccount("auto", { qemuConf: conf, passwd: PASSWD, group: GROUP }), {
    uid: 0,
    gid: 110,
    label: "+0:110",
  });
  assert.equal(qemuAccount("100:nogroup", { qemuConf: null, passwd: PASSWD, group: GROUP }).uid, 4242);
});

Deno.test("qemuAccount() NAME takes the user's primary group; an unknown name says where it looked", () => {
  assert.deepEqual(qemuAccount("nobody", { qemuConf: null, passwd: PASSWD, group: GROUP }), {
    uid: 65534,
    gid: 65534,
    label: "nobody:65534",
  });
  assert.throws(
    () => qemuAccount("qemu:kvm", { qemuConf: null, passwd: PASSWD, group: GROUP }),
    { name: "RangeError", message: 'no user "qemu" in /etc/passwd' },
  );
  assert.throws(
    () => qemuAccount("auto", { qemuConf: null, passwd: "root:x:0:0::/:/bin/sh", group: GROUP }),
    /qemu.conf sets no user and none of libvirt-qemu, qemu exists/,
  );
});
