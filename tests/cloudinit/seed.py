"""Read an extracted seed image with Debian's cloud-init, as a guest would at boot.

Usage: seed.py configdrive|nocloud DIR MAC
configdrive: DataSourceConfigDrive.read_config_drive(DIR), and
openstack.convert_net_json of its network data.
nocloud: DataSourceNoCloud with a copy of DIR as its seed folder, and
network_state's reading of its network-config.
The guest's NIC with MAC is called "ens3". Prints one JSON object.
"""
import os
import shutil
import sys

import _guest

kind, source_dir, mac = sys.argv[1:4]
_guest.stay_local()

from cloudinit import net, util  # noqa: E402
from cloudinit.net import network_state  # noqa: E402

net.get_interfaces_by_mac = lambda *args, **kwargs: {mac: "ens3"}
network_state.get_interfaces_by_mac = net.get_interfaces_by_mac
network_state.find_interface_name_from_mac = lambda m: "ens3" if m == mac else None


def interfaces(config):
    """The interfaces network_state makes of a network config (any version)."""
    state = network_state.parse_net_config_data(config)
    out = []
    for iface in state.iter_interfaces():
        out.append(
            {
                "name": iface.get("name"),
                "mac_address": iface.get("mac_address"),
                "subnets": iface.get("subnets"),
            }
        )
    return {"interfaces": out, "dns": state.dns_nameservers}


if kind == "configdrive":
    from cloudinit.sources import DataSourceConfigDrive
    from cloudinit.sources.helpers import openstack

    data = DataSourceConfigDrive.read_config_drive(source_dir)
    md = data["metadata"]
    net_cfg = openstack.convert_net_json(data.get("networkdata"), known_macs={mac: "ens3"})
    result = {
        "version": data["version"],
        "instance_id": md.get("instance-id"),
        "local_hostname": md.get("local-hostname"),
        "public_keys": md.get("public_keys"),
        "user_data": _guest.text(data.get("userdata")),
        "vendor_data": data.get("vendordata"),
        "vendor_data2": data.get("vendordata2"),
        "ec2_instance_id": (data.get("ec2-metadata") or {}).get("instance-id"),
        "network_config": net_cfg,
        "network_state": interfaces(net_cfg),
    }
else:
    from cloudinit.sources import DataSourceNoCloud

    paths = _guest.paths()
    # What the guest would find on the mounted cidata volume, as a seed folder.
    shutil.copytree(source_dir, os.path.join(paths.seed_dir, "nocloud"))
    DataSourceNoCloud.dmi.read_dmi_data = lambda key: None
    util.get_cmdline = lambda: "root=/dev/vda1 ro console=ttyS0"
    util.find_devs_with = lambda *args, **kwargs: []
    ds = DataSourceNoCloud.DataSourceNoCloud({}, _guest.distro(paths), paths)
    ok = ds._get_data()
    result = {"get_data": bool(ok)}
    if ok:
        result.update(
            {
                "seed": ds.seed,
                "dsmode": ds.dsmode,
                "instance_id": ds.get_instance_id(),
                "local_hostname": _guest.hostname(ds.get_hostname()),
                "public_keys": ds.get_public_ssh_keys(),
                "user_data": _guest.text(ds.userdata_raw),
                "vendor_data": _guest.text(ds.vendordata_raw),
                "network_config": ds.network_config,
                "network_state": interfaces(ds.network_config),
            }
        )
_guest.emit(result)
