/**
 * The template renderer of a configuration: `userdata_dir`, its suffixes,
 * `default_template` and the built-in template. The service and the seed
 * images build theirs here, so both render the same user-data.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { BUILTIN_USER_DATA, TemplateRenderer } from "../user_data.ts";

/** A TemplateRenderer for the configured templates, falling back to the built-in one. */
export function createTemplateRenderer(config: Config): TemplateRenderer {
  return new TemplateRenderer(
    {
      userdataDir: config.mdserver.userdataDir,
      suffixes: config.mdserver.userdataSuffixes,
      defaultTemplate: config.mdserver.defaultTemplate,
    },
    { builtinTemplate: BUILTIN_USER_DATA },
  );
}
