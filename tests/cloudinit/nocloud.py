"""Drive Debian's cloud-init NoCloud-over-HTTP code against mdserver as a guest.

Usage: nocloud.py SEED_URL SMBIOS_SERIAL SOURCE_IP
Reads the seed with util.read_seeded (25.x also reads network-config), then runs DataSourceNoCloudNet the
way a guest whose libvirt domain sets the SMBIOS system serial to
SMBIOS_SERIAL does (the kernel command line, seed folders and block
devices are made empty). Prints one JSON object.
"""
import sys

import _guest

seed_url, serial, source_ip = sys.argv[1:4]
_guest.become_guest(source_ip)
_guest.stay_local()

from cloudinit import util  # noqa: E402
from cloudinit.sources import DataSourceNoCloud  # noqa: E402

md, ud, vd, network = _guest.read_seeded(seed_url, timeout=2, retries=1)
result = {
    "seeded_meta_data": md,
    "seeded_network_config": network,
    "seeded_user_data": _guest.text(ud),
    "seeded_vendor_data": _guest.text(vd),
}

DataSourceNoCloud.dmi.read_dmi_data = lambda key: serial if key == "system-serial-number" else None
util.get_cmdline = lambda: "root=/dev/vda1 ro console=ttyS0"
util.find_devs_with = lambda *args, **kwargs: []

paths = _guest.paths()
ds = DataSourceNoCloud.DataSourceNoCloudNet({}, _guest.distro(paths), paths)
ok = ds._get_data()
result["get_data"] = bool(ok)
if ok:
    result.update(
        {
            "seed": ds.seed,
            "dsmode": ds.dsmode,
            "instance_id": ds.get_instance_id(),
            "local_hostname": _guest.hostname(ds.get_hostname()),
            "fqdn": _guest.hostname(ds.get_hostname(fqdn=True)),
            "public_keys": ds.get_public_ssh_keys(),
            "user_data": _guest.text(ds.userdata_raw),
            "vendor_data": _guest.text(ds.vendordata_raw),
            "network_config": ds.network_config,
        }
    )
_guest.emit(result)
