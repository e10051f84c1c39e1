"""Drive Debian's cloud-init DataSourceOpenStack against mdserver as a guest.

Usage: openstack.py METADATA_URL SOURCE_IP MAC
The guest's DMI product name reads "OpenStack Nova" (what libvirt's
<sysinfo> sets), so cloud-init's own detection runs: detect_openstack() in
22.4, DataSource.ds_detect() in 25.x, both through get_data(). The EC2
side-read that cloud-init always sends to 169.254.169.254 is pointed at
METADATA_URL; the guest's NIC with MAC is called "ens3". Prints one JSON
object of what the datasource made of the service.
"""
import sys

import _guest

metadata_url, source_ip, mac = sys.argv[1:4]
_guest.become_guest(source_ip)
_guest.stay_local()

from cloudinit import net  # noqa: E402
from cloudinit.sources import DataSourceOpenStack  # noqa: E402
from cloudinit.sources.helpers import ec2, openstack  # noqa: E402

DMI = {"system-product-name": "OpenStack Nova"}
DataSourceOpenStack.dmi.read_dmi_data = DMI.get


def read_ec2_metadata(self):
    return ec2.get_instance_metadata(
        metadata_address=metadata_url,
        ssl_details=self.ssl_details,
        timeout=self.timeout,
        retries=self.retries,
    )


openstack.MetadataReader._read_ec2_metadata = read_ec2_metadata
net.get_interfaces_by_mac = lambda *args, **kwargs: {mac: "ens3"}

sys_cfg = {
    "datasource_list": ["OpenStack", "None"],
    "datasource": {
        "OpenStack": {
            "metadata_urls": [metadata_url],
            "max_wait": 5,
            "timeout": 2,
            "retries": 1,
        }
    },
}
paths = _guest.paths()
ds = DataSourceOpenStack.DataSourceOpenStack(sys_cfg, _guest.distro(paths), paths)
ok = ds.get_data()

result = {"get_data": bool(ok)}
if ok:
    result.update(
        {
            "version": ds.version,
            "metadata_address": ds.metadata_address,
            "instance_id": ds.get_instance_id(),
            "local_hostname": _guest.hostname(ds.get_hostname()),
            "fqdn": _guest.hostname(ds.get_hostname(fqdn=True)),
            "availability_zone": ds.availability_zone,
            "public_keys": ds.get_public_ssh_keys(),
            "meta": ds.metadata.get("meta"),
            "dsmode": ds.dsmode,
            "user_data": _guest.text(ds.userdata_raw),
            "vendor_data": _guest.text(ds.vendordata_raw),
            "vendor_data2": _guest.text(ds.vendordata2_raw),
            "network_config": ds.network_config,
            "ec2_instance_id": (ds.ec2_metadata or {}).get("instance-id"),
        }
    )
_guest.emit(result)
