"""Play cloud-init's boot stages as a guest, with its own reporting code posting to mdserver.

Usage: boot_events.py SEED_URL SOURCE_IP STAGES [FAIL_MODULE]
Reads the vendor-data from the NoCloud seed at SEED_URL as the guest at
SOURCE_IP and configures reporting from its `reporting:` key with
cloudinit.reporting.update_configuration (what cloud-init's
apply_reporting_cfg does), so cloud-init's WebHookHandler posts every event.
Then runs each stage named in STAGES (comma-separated: init-network,
modules-config, modules-final) as cloud-init's cmd/main runs it: the stage's
ReportEventStack is entered first and reporting configured inside it (each
stage is its own process, so the stage's start event is never posted), and
each module is a child ReportEventStack with cloud-init's names and
messages. FAIL_MODULE (e.g. runcmd) raises inside its module, as a failing
module does. Prints one JSON object: the events the reporter queued and
the warnings cloud-init logged (a failed post is one).
"""
import logging
import sys

import _guest

seed_url, source_ip, stage_list = sys.argv[1:4]
fail_module = sys.argv[4] if len(sys.argv) > 4 else None
_guest.become_guest(source_ip)
_guest.stay_local()

from cloudinit import reporting, util  # noqa: E402
from cloudinit.reporting import events  # noqa: E402


class Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


warnings = Warnings()
logging.getLogger().addHandler(warnings)

_md, _ud, vendor_data, _network = _guest.read_seeded(seed_url, timeout=2, retries=1)
config = util.load_yaml(_guest.text(vendor_data))
reporting_config = config["reporting"]

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

_guest.emit({"posted": posted, "warnings": warnings.messages})
