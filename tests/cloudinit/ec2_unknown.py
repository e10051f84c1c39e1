"""Drive Debian's cloud-init DataSourceEc2 (platform "unknown", IMDSv1) as a guest.

Usage: ec2_unknown.py METADATA_URL SOURCE_IP MAC
Every connection leaves from SOURCE_IP, so mdserver identifies this process
as the guest holding that address. Prints one JSON object of what cloud-init
made of the metadata service.
"""
import json
import sys
import tempfile

import urllib3.util.connection as urllib3_connection

metadata_url, source_ip, mac = sys.argv[1:4]

_create_connection = urllib3_connection.create_connection


def create_connection_from_guest(address, *args, **kwargs):
    kwargs["source_address"] = (source_ip, 0)
    return _create_connection(address, *args, **kwargs)


urllib3_connection.create_connection = create_connection_from_guest

from cloudinit import helpers  # noqa: E402
from cloudinit.sources import DataSourceEc2  # noqa: E402
from cloudinit.sources.helpers import ec2  # noqa: E402

tmp = tempfile.mkdtemp()
sys_cfg = {
    "datasource": {
        "Ec2": {"metadata_urls": [metadata_url], "max_wait": 5, "timeout": 2}
    }
}
paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp})
ds = DataSourceEc2.DataSourceEc2(sys_cfg, None, paths)
ds._cloud_name = "unknown"
ok = ds._get_data()

result = {"get_data": bool(ok)}
if ok:
    hostname = ds.get_hostname()
    fqdn = ds.get_hostname(fqdn=True)
    result.update(
        {
            "metadata_address": ds.metadata_address,
            "api_version": ds.api_version if hasattr(ds, "api_version") else None,
            "instance_id": ds.get_instance_id(),
            "local_hostname": getattr(hostname, "hostname", hostname),
            "fqdn": getattr(fqdn, "hostname", fqdn),
            "public_keys": ds.get_public_ssh_keys(),
            "availability_zone": ds.availability_zone,
            "user_data": (ds.userdata_raw or b"").decode()
            if isinstance(ds.userdata_raw, bytes)
            else ds.userdata_raw,
            "network_config": DataSourceEc2.convert_ec2_metadata_network_config(
                ds.metadata["network"], macs_to_nics={mac: "eth0"}, fallback_nic="eth0"
            ),
        }
    )
    # The helpers cloud-init's Ec2 datasource is built on.
    md = ec2.get_instance_metadata("2009-04-04", metadata_url)
    ud = ec2.get_instance_userdata("2009-04-04", metadata_url)
    result["helper_instance_id"] = md.get("instance-id")
    result["helper_keys"] = md.get("public-keys")
    result["helper_user_data"] = ud.decode() if isinstance(ud, bytes) else ud
print(json.dumps(result))
