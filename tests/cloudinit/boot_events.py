"""Play cloud-init's boot stages as a guest, with its own reporting code posting to mdserver.

Usage: boot_events.py SEED_URL SOURCE_IP STAGES [FAIL_MODULE]
Reads the user-data and vendor-data from the NoCloud seed at SEED_URL as the
guest at SOURCE_IP and splits them into parts with cloud-init's own
UserDataProcessor. Every `#cloud-boothook` part is run by cloud-init's own
BootHookPartHandler (prefix stripped, written, executed), twice, with the
runtime configuration /run/cloud-init/cloud.cfg standing at a temporary
file that holds what ds-identify writes there. Then the configuration is
loaded as that version's stages.Init loads it (fetch_base_config, which
reads the runtime file, under helpers.ConfigMerger with the cached instance
cloud-config the parts' cloud-config makes), twice:

- a later boot's init-local: a fresh runtime file (no hook has run yet) and
  the cached instance cloud-config; cmd.main's apply_reporting_cfg of it;
- after the hook: the same with the runtime file the hook wrote; its
  `reporting` applied the same way must register a WebHookHandler.

Then runs each stage named in STAGES (comma-separated: init-network,
modules-config, modules-final) as cloud-init's cmd/main runs it: the stage's
ReportEventStack is entered first and reporting configured inside it from
that configuration (each stage is its own process in 22.4, so the stage's
start event is never posted), and each module is a child ReportEventStack
with cloud-init's names and messages. FAIL_MODULE (e.g. runcmd) raises inside
its module, as a failing module does. Prints one JSON object: the events the
reporter posted, the warnings cloud-init logged (a failed post is one), the
runtime file, what each boot's configuration had under `reporting`, and
what it has when the instance's cloud-config sets `reporting:` itself.
"""
import inspect
import json
import logging
import os
import sys
import tempfile

import _guest

seed_url, source_ip, stage_list = sys.argv[1:4]
fail_module = sys.argv[4] if len(sys.argv) > 4 else None
_guest.become_guest(source_ip)
_guest.stay_local()

from cloudinit import helpers, reporting, stages, user_data, util  # noqa: E402
from cloudinit.handlers import boot_hook  # noqa: E402
from cloudinit.cmd.main import apply_reporting_cfg  # noqa: E402
from cloudinit.reporting import events  # noqa: E402
from cloudinit.settings import PER_ALWAYS  # noqa: E402

RUNTIME_CONFIG = "/run/cloud-init/cloud.cfg"
DS_IDENTIFY = "datasource_list: [ NoCloud, None ]\n"  # what ds-identify writes there (echo)


class Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


warnings = Warnings()
logging.getLogger().addHandler(warnings)

paths = _guest.paths()
_md, user_raw, vendor_raw, _network = _guest.read_seeded(seed_url, timeout=2, retries=1)


def parts(raw):
    """(content type, payload) of each part, as cloud-init's UserDataProcessor types them."""
    if not raw:
        return []
    message = user_data.UserDataProcessor(paths).process(_guest.text(raw))
    found = []
    for part in message.walk():
        if part.get_content_maintype() == "multipart":
            continue
        found.append((part.get_content_type(), util.decode_binary(part.get_payload(decode=True))))
    return found


def cloud_config(found):
    """The parts' cloud-config merged (what cloud-init caches as the instance's cloud-config)."""
    configs = [util.load_yaml(payload) or {} for ctype, payload in found if ctype == "text/cloud-config"]
    return util.mergemanydict(list(reversed(configs))) if configs else None


user_parts, vendor_parts = parts(user_raw), parts(vendor_raw)
hooks = [payload for ctype, payload in user_parts + vendor_parts if ctype == "text/cloud-boothook"]

# The cached instance cloud-config, as init-network of the first boot wrote it.
instance_dir = os.path.join(paths.cloud_dir, "instances", "i-guest")
os.makedirs(instance_dir)
os.symlink(instance_dir, os.path.join(paths.cloud_dir, "instance"))
cached = {}
for name, found in (("cloud-config.txt", user_parts), ("vendor-cloud-config.txt", vendor_parts)):
    config = cloud_config(found)
    if config is not None:
        cached[name] = config
        util.write_file(os.path.join(instance_dir, name), "#cloud-config\n" + json.dumps(config))


def runtime_dir():
    """A fresh /run/cloud-init: only ds-identify's line in cloud.cfg."""
    run_dir = tempfile.mkdtemp(dir=paths.cloud_dir, prefix="run-")
    util.write_file(os.path.join(run_dir, "cloud.cfg"), DS_IDENTIFY)
    return run_dir


class Instance:
    """The little of a datasource the boothook handler asks for."""

    def get_instance_id(self):
        return "i-guest"


def run_hook(payload, run_dir, index):
    """cloud-init's own boothook handler runs the part (the runtime file's path moved to run_dir); it logs a failure."""
    assert RUNTIME_CONFIG in payload, "the hook writes the runtime configuration"
    hook_paths = helpers.Paths({"cloud_dir": paths.cloud_dir, "run_dir": run_dir}, ds=Instance())
    handler = boot_hook.BootHookPartHandler(hook_paths, Instance())
    moved = payload.replace(RUNTIME_CONFIG, os.path.join(run_dir, "cloud.cfg"))
    handler.handle_part(None, "text/cloud-boothook", f"part-{index:03d}", moved, PER_ALWAYS)


def load_config(run_dir):
    """The configuration as this version's stages.Init reads it, with run_dir standing for /run/cloud-init."""
    if "run_dir" in inspect.signature(stages.fetch_base_config).parameters:
        base = stages.fetch_base_config(run_dir)  # 23.x and later
    else:
        stages.RUN_CLOUD_CONFIG = os.path.join(run_dir, "cloud.cfg")  # 22.4 reads the constant
        base = stages.fetch_base_config()
    return helpers.ConfigMerger(paths=paths, datasource=None, base_cfg=base).cfg


def registered():
    return {
        name: {"class": type(handler).__name__, "endpoint": getattr(handler, "endpoint", None)}
        for name, handler in reporting.instantiated_handler_registry.registered_items.items()
    }


# A later boot's init-local: /run is a fresh tmpfs, the instance cloud-config is cached.
later_dir = runtime_dir()
later_config = load_config(later_dir)
apply_reporting_cfg(later_config)
later_handlers = registered()

# init-network: the hooks run while the user-data and vendor-data are consumed (twice: the entry is added once).
run_dir = runtime_dir()
for index, payload in enumerate(hooks * 2):
    run_hook(payload, run_dir, index)
with open(os.path.join(run_dir, "cloud.cfg")) as runtime_file:
    runtime_text = runtime_file.read()
config = load_config(run_dir)
apply_reporting_cfg(config)
handlers = registered()
reporting_config = config["reporting"]
# The stages below are processes of their own: each configures reporting inside its stage.
reporting.update_configuration({"mdserver": None})

# What each stage runs, with cloud-init's descriptions (cmd/main.py, config/modules.py).
STAGES = {
    "init-network": ("searching for network datasources", ["seed_random", "write_files", "set_hostname", "ssh"]),
    "modules-config": ("running modules for config", ["locale", "apt_configure", "runcmd"]),
    "modules-final": ("running modules for final", ["scripts_user", "phone_home", "final_message"]),
}

posted = []
handler = None
for stage in stage_list.split(","):
    description, modules = STAGES[stage]
    reporter = events.ReportEventStack(stage, description, reporting_enabled=True)
    try:
        with reporter:
            reporting.update_configuration(reporting_config)
            handler = reporting.instantiated_handler_registry.registered_items["mdserver"]
            original = handler.publish_event

            def publish(event, original=original):
                posted.append(event.as_dict())
                original(event)

            handler.publish_event = publish
            for name in modules:
                run_name = f"config-{name}"
                child = events.ReportEventStack(
                    name=run_name,
                    description=f"running {run_name} with frequency once-per-instance",
                    parent=reporter,
                )
                try:
                    with child:
                        if name == fail_module:
                            raise RuntimeError(f"{name} failed")
                        child.message = f"{run_name} ran successfully"
                except RuntimeError:
                    pass
    finally:
        reporting.flush_events()
        # The next stage is a new process: its reporter is configured again.
        reporting.update_configuration({"mdserver": None})

# The guest's own `reporting:` (user-data or the operator's vendor-data) is in the instance's cloud-config: it
# is merged over the runtime file's, so `mdserver: null` turns mdserver's off and other handlers join it.
own = dict(cached.get("cloud-config.txt", {}), reporting={"mdserver": None, "mine": {"type": "log"}})
util.write_file(os.path.join(instance_dir, "cloud-config.txt"), "#cloud-config\n" + json.dumps(own))
own_reporting = load_config(run_dir).get("reporting")

_guest.emit({
    "posted": posted,
    "warnings": warnings.messages,
    "hooks": len(hooks),
    "runtime_config": runtime_text,
    "reporting": reporting_config,
    "handlers": handlers,
    "cached_instance_config": cached,
    "later_boot_reporting": later_config.get("reporting"),
    "later_boot_handlers": later_handlers,
    "own_reporting": own_reporting,
})
