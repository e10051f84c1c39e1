/**
 * The admin TCP listener's token: from the systemd credential
 * (`LoadCredential=admin-token:…`, so the service reads a copy of a
 * root-only file), else from `[admin] token_file`.
 *
 * @module
 */

/** The credential name the unit loads the token file under. */
export const ADMIN_TOKEN_CREDENTIAL = "admin-token";

/** The token, or an error saying where it was looked for. */
export async function loadAdminToken(tokenFile: string, env: (name: string) => string | undefined): Promise<string> {
  const credentials = env("CREDENTIALS_DIRECTORY");
  const places = credentials ? [`${credentials}/${ADMIN_TOKEN_CREDENTIAL}`, tokenFile] : [tokenFile];
  const reasons: string[] = [];
  for (const place of places) {
    try {
      const token = (await Deno.readTextFile(place)).trim();
      if (token.length >= 16) return token;
      reasons.push(`${place}: shorter than 16 characters`);
    } catch (error) {
      reasons.push(`${place}: ${(error as Error).message}`);
    }
  }
  throw new Error(
    `the admin TCP listener ([admin] listen_address) needs a token (install writes one): ${reasons.join("; ")}`,
  );
}

/** The environment as the permission set allows it; a variable it does not allow is unset. */
export function permittedEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
