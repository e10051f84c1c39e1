"""Shared set-up for the cloud-init drivers: act as one guest, stay on loopback.

Import this module before any cloudinit module.

- `become_guest(ip)`: every HTTP connection cloud-init (requests/urllib3)
  opens leaves from `ip`, so mdserver identifies this process as the guest
  holding that address.
- `stay_local()`: cloud-init's `is_resolvable_url` resolves names through
  the host's resolver (it probes for DNS redirection); answer "yes" so the
  drivers never send traffic outside 127.0.0.0/8.
- `paths()`: a cloud-init `Paths` in a fresh temporary folder.
- `distro(paths)`: cloud-init's own Debian distro object (since 23.x the
  datasources and network helpers take one; it only reads this host's
  /sys/class/net here, never configures anything).
- `read_seeded(...)`: util.read_seeded as (meta, user, vendor, network);
  22.4 returns three values, 25.x four (network-config first).

The drivers run under both the system's cloud-init (22.4.2) and the current
one (25.x, through PYTHONPATH); differences between the two are handled
here or, where they are local to one datasource, in its driver.
"""
import atexit
import json
import os
import shutil
import sys
import tempfile

import urllib3.util.connection as urllib3_connection

_create_connection = urllib3_connection.create_connection


def become_guest(ip):
    def create_connection_from_guest(address, *args, **kwargs):
        kwargs["source_address"] = (ip, 0)
        return _create_connection(address, *args, **kwargs)

    urllib3_connection.create_connection = create_connection_from_guest


def stay_local():
    from cloudinit import util

    util.is_resolvable_url = lambda url: True


def paths():
    """Its seed folder (seed_dir) is <cloud_dir>/seed, as on a guest."""
    from cloudinit import helpers

    tmp = tempfile.mkdtemp(prefix="mdserver-cloudinit-")
    atexit.register(shutil.rmtree, tmp, True)
    return helpers.Paths({"cloud_dir": tmp, "run_dir": os.path.join(tmp, "run")})


def distro(paths):
    from cloudinit import distros

    return distros.fetch("debian")("debian", {}, paths)


def read_seeded(base, **kwargs):
    from cloudinit import util

    seeded = util.read_seeded(base, **kwargs)
    if len(seeded) == 3:
        return (*seeded, None)
    return seeded


def text(value):
    """cloud-init's raw user/vendor data as text (bytes, str, None or a list)."""
    if isinstance(value, bytes):
        return value.decode()
    return value


def hostname(value):
    """get_hostname() returns a namedtuple on 22.4, a string before."""
    return getattr(value, "hostname", value)


def emit(result):
    json.dump(result, sys.stdout, default=repr)
    sys.stdout.write("\n")
