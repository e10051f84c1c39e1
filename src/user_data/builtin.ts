/**
 * The user-data a guest gets when no template matches and no
 * default_template is set: host name, FQDN, every public key and, when boot
 * tracking is on, phone_home. With `[events]` on, the renderer joins the
 * boot-events hook to it (boot_events.ts), for guests whose datasource has
 * no vendor-data (EC2). Schema-clean for cloud-init 22.4 and current
 * releases (no meta-data keys such as `local-hostname` at the top level).
 *
 * @module
 */

/** md_server's built-in template (hostname + default key), used when nothing matches and no default_template. */
export const BUILTIN_USER_DATA: string = `#cloud-config
hostname: <%= __mds.yaml(it.hostname) %>
fqdn: <%= __mds.yaml(it.fqdn || it.hostname + ".localdomain") %>
manage_etc_hosts: true
<% const keys = __mds.publicKeys(it.public_keys) %>
<% if (keys.length > 0) { %>
ssh_authorized_keys:
<%   for (const key of keys) { %>
  - <%= __mds.yaml(key) %>
<%   } %>
<% } %>
<% if (it.phone_home_url) { %>
phone_home:
  url: <%= __mds.yaml(it.phone_home_url) %>
  post: [pub_key_rsa, pub_key_ecdsa, pub_key_ed25519, instance_id, hostname, fqdn]
  tries: 5
<% } %>
`;
