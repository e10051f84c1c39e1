"""Boot-time reading of an extracted config drive by Debian's cloud-init, as DataSourceConfigDrive.

Usage: configdrive.py DIR PASSWORD
DIR is what the guest's mount of the config-2 volume shows; it is put where
the datasource looks first (<seed_dir>/config_drive) and read by _get_data().
The user-data is processed as cloud-init processes it; the chpasswd hashes
found in its cloud-config are checked against PASSWORD with the C library's
crypt(3), which is what the guest's /etc/shadow is checked with.
Prints one JSON object.
"""
import json
import os
import shutil
import sys
import warnings

import _guest

source_dir, password = sys.argv[1:3]
_guest.stay_local()

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # noqa: E402

from cloudinit import util  # noqa: E402
from cloudinit.sources import DataSourceConfigDrive  # noqa: E402

paths = _guest.paths()
shutil.copytree(source_dir, os.path.join(paths.seed_dir, "config_drive"))
DataSourceConfigDrive.find_candidate_devs = lambda *args, **kwargs: []
ds = DataSourceConfigDrive.DataSourceConfigDrive({}, _guest.distro(paths), paths)
ok = ds._get_data()
result = {"get_data": bool(ok)}
if ok:
    configs = []
    for part in ds.get_userdata(apply_filter=False).walk():
        if part.get_content_type() == "text/cloud-config":
            configs.append(util.load_yaml(part.get_payload(decode=True)))
    hashes = [
        user.get("password")
        for config in configs
        for user in ((config or {}).get("chpasswd") or {}).get("users", [])
        if user.get("type") == "hash"
    ]

    def read(name):
        path = os.path.join(source_dir, name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read()

    meta = json.loads(read("openstack/latest/meta_data.json") or "{}")
    result.update(
        {
            "source": ds.source,
            "instance_id": ds.get_instance_id(),
            "local_hostname": _guest.hostname(ds.get_hostname()),
            "public_keys": sorted(ds.get_public_ssh_keys()),
            "user_data": _guest.text(ds.userdata_raw),
            "password_hashes": hashes,
            "hashes_match_password": [crypt.crypt(password, h) == h for h in hashes],
            "admin_pass": meta.get("admin_pass"),
            "vm_password": read("cloudstack/password/vm_password.txt"),
            "cloudstack_local_hostname": read("cloudstack/metadata/local-hostname.txt"),
            "cloudstack_user_data": read("cloudstack/userdata/user_data.txt"),
        }
    )
_guest.emit(result)
