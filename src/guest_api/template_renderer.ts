/**
 * The template renderer of a configuration: `userdata_dir`, its suffixes,
 * `default_template` and the built-in template. The service and the seed
 * images build theirs here, so both render the same user-data.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import type { Logger } from "../log/log.ts";
import { TemplateRenderer } from "../user_data/mod.ts";

/**
 * A TemplateRenderer for the configured templates, falling back to the
 * built-in one; what cloud-init accepts with a warning (a duplicate key) is
 * logged once per template version.
 */
export function createTemplateRenderer(config: Config, log: Logger): TemplateRenderer {
  return new TemplateRenderer({
    userdataDir: config.mdserver.userdataDir,
    suffixes: config.mdserver.userdataSuffixes,
    defaultTemplate: config.mdserver.defaultTemplate,
  }, {
    onWarning: (file, warning) =>
      log.warning(`template ${file}${warning.line === null ? "" : ` line ${warning.line}`}: ${warning.message}`),
  });
}
