import assert from "node:assert/strict";
import { hostLabel, hostNames, orderedNames } from "./hostname.ts";

Deno.test("hostLabel() turns any domain name into a DNS label", () => {
  assert.equal(hostLabel("web01"), "web01");
  assert.equal(hostLabel("Web_01.prod"), "web-01-prod");
  assert.equal(hostLabel("--über server--"), "xn--ber-goa-server");
  assert.notEqual(hostLabel("日本"), hostLabel("中国"));
  assert.match(hostLabel("日本"), /^xn--[a-z0-9-]+$/);
  assert.equal(hostLabel("$(rm -rf /)"), "rm-rf");
  assert.equal(hostLabel("***"), "host");
  assert.equal(hostLabel("a".repeat(62) + "-b" + "c".repeat(10)), "a".repeat(62));
  assert.equal(hostLabel("b".repeat(80)), "b".repeat(63));
});

Deno.test("orderedNames() follows md_server's entry_order with prefix and domain", () => {
  const names = hostNames("web01", "thing-", "example.com");
  assert.deepEqual(orderedNames(names, ["prefix", "domain", "base"]), [
    "thing-web01",
    "thing-web01.example.com",
    "web01",
  ]);
  assert.deepEqual(orderedNames(hostNames("web01", null, null), ["prefix", "domain", "base"]), ["web01"]);
  assert.deepEqual(orderedNames(hostNames("web01", null, "example.com"), ["fqdn", "base"]), [
    "web01.example.com",
    "web01",
  ]);
});
