/**
 * Conformance with the real client: Debian's cloud-init Python code reads
 * mdserver through the Ec2 datasource, as a guest bound to its address.
 */
import assert from "node:assert/strict";
import { domainXml, startTestService } from "./_harness.ts";
import { cloudInitClients, runDriver } from "./_cloudinit.ts";

for (const { client, missing } of await cloudInitClients("DataSourceEc2")) {
  Deno.test({
    name: `${client.label}: DataSourceEc2 (platform unknown) reads instance-id, host name, keys, user-data and network`,
    ignore: missing !== null,
    async fn() {
      const t = await startTestService({
        userdata: {
          "web01.yaml": "#cloud-config\nhostname: {{hostname}}\nruncmd:\n  - echo mdserver-{{instance_id}}\n",
        },
      });
      try {
        const mac = "52:54:00:ab:cd:01";
        const upload = await (await t.upload(
          domainXml({ name: "web01", uuid: "0d6e4a3b-1c2d-4e5f-8a9b-0c1d2e3f4a5b", mac }),
        )).json();
        const { result, stderr } = await runDriver(client, "ec2_unknown.py", [t.metadataUrl, upload.ipv4, mac]);

        assert.equal(result.get_data, true, stderr);
        assert.equal(result.instance_id, "i-0d6e4a3b1c2d4e5f8a9b0c1d2e3f4a5b");
        assert.equal(result.local_hostname, "web01");
        assert.equal(result.fqdn, "web01.test.internal");
        assert.equal(result.availability_zone, "testzone");
        assert.deepEqual(result.public_keys.sort(), [
          "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyDefault test@default",
          "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABTestKeyBackup test@backup",
        ]);
        assert.equal(
          result.user_data,
          "#cloud-config\nhostname: web01\nruncmd:\n  - echo mdserver-i-0d6e4a3b1c2d4e5f8a9b0c1d2e3f4a5b\n",
        );
        assert.deepEqual(result.network_config, {
          version: 2,
          ethernets: {
            eth0: { dhcp4: true, dhcp6: false, match: { macaddress: mac }, "set-name": "eth0" },
          },
        });
        assert.equal(result.helper_instance_id, "i-0d6e4a3b1c2d4e5f8a9b0c1d2e3f4a5b");
        assert.ok(
          result.helper_keys && Object.keys(result.helper_keys).length === 2,
          JSON.stringify(result.helper_keys),
        );
        assert.equal(result.helper_user_data, result.user_data);
      } finally {
        await t.close();
      }
    },
  });
}
