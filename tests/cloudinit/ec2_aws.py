"""Drive Debian's cloud-init DataSourceEc2 on its AWS path (IMDSv2 tokens) as a guest.

Usage: ec2_aws.py METADATA_URL SOURCE_IP
Prints one JSON object: what the datasource read through tokens, and the
status codes of a token-less GET and of a GET with a forged token.
"""
import sys

import _guest

metadata_url, source_ip = sys.argv[1:3]
_guest.become_guest(source_ip)
_guest.stay_local()

from cloudinit import url_helper  # noqa: E402
from cloudinit.sources import DataSourceEc2  # noqa: E402

sys_cfg = {
    "datasource": {
        "Ec2": {"metadata_urls": [metadata_url], "max_wait": 5, "timeout": 2}
    }
}
paths = _guest.paths()
ds = DataSourceEc2.DataSourceEc2(sys_cfg, _guest.distro(paths), paths)
ds._cloud_name = "aws"
ok = ds._get_data()

result = {"get_data": bool(ok)}
if ok:
    token = ds._api_token
    result.update(
        {
            "token": _guest.text(token),
            "instance_id": ds.get_instance_id(),
            "metadata_instance_id": ds.metadata.get("instance-id"),
            "local_hostname": _guest.hostname(ds.get_hostname()),
            "public_keys": ds.get_public_ssh_keys(),
            "availability_zone": ds.availability_zone,
            "region": ds.region,
            "identity": ds.identity,
            "user_data": _guest.text(ds.userdata_raw),
            "api_version": ds._crawled_metadata.get("_metadata_api_version"),
        }
    )


def status(headers):
    try:
        return url_helper.readurl(
            metadata_url + "/latest/meta-data/instance-id",
            headers=headers,
            retries=0,
        ).code
    except url_helper.UrlError as e:
        return e.code


result["tokenless_status"] = status({})
result["forged_token_status"] = status({"X-aws-ec2-metadata-token": "v1.9999999999.AAAAAAAAAAAAAAAA." + "A" * 43})
if ok:
    result["token_status"] = status({"X-aws-ec2-metadata-token": _guest.text(ds._api_token)})
_guest.emit(result)
