"""Drive Debian's cloud-init DataSourceEc2 (platform "unknown", IMDSv1) as a guest.

Usage: ec2_unknown.py METADATA_URL SOURCE_IP MAC
Every connection leaves from SOURCE_IP, so mdserver identifies this process
as the guest holding that address. Prints one JSON object of what cloud-init
made of the metadata service.
"""
import inspect
import sys

import _guest

metadata_url, source_ip, mac = sys.argv[1:4]
_guest.become_guest(source_ip)
_guest.stay_local()

from cloudinit.sources import DataSourceEc2  # noqa: E402
from cloudinit.sources.helpers import ec2  # noqa: E402

sys_cfg = {
    "datasource": {
        "Ec2": {"metadata_urls": [metadata_url], "max_wait": 5, "timeout": 2}
    }
}
paths = _guest.paths()
distro = _guest.distro(paths)
ds = DataSourceEc2.DataSourceEc2(sys_cfg, distro, paths)
ds._cloud_name = "unknown"
ok = ds._get_data()


def network_config(network_md):
    """convert_ec2_metadata_network_config takes the distro second since 23.x."""
    convert = DataSourceEc2.convert_ec2_metadata_network_config
    kwargs = {"macs_to_nics": {mac: "eth0"}, "fallback_nic": "eth0"}
    if "distro" in inspect.signature(convert).parameters:
        kwargs["distro"] = distro
    return convert(network_md, **kwargs)


result = {"get_data": bool(ok)}
if ok:
    result.update(
        {
            "metadata_address": ds.metadata_address,
            "api_version": ds.api_version if hasattr(ds, "api_version") else None,
            "instance_id": ds.get_instance_id(),
            "local_hostname": _guest.hostname(ds.get_hostname()),
            "fqdn": _guest.hostname(ds.get_hostname(fqdn=True)),
            "public_keys": ds.get_public_ssh_keys(),
            "availability_zone": ds.availability_zone,
            "user_data": _guest.text(ds.userdata_raw),
            "network_config": network_config(ds.metadata["network"]),
        }
    )
    # The helpers cloud-init's Ec2 datasource is built on.
    md = ec2.get_instance_metadata("2009-04-04", metadata_url)
    ud = ec2.get_instance_userdata("2009-04-04", metadata_url)
    result["helper_instance_id"] = md.get("instance-id")
    result["helper_keys"] = md.get("public-keys")
    result["helper_user_data"] = _guest.text(ud)
_guest.emit(result)
