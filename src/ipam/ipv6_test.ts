import assert from "node:assert/strict";
import { formatIpv6, ipv6ForIpv4, parseIpv6, parseIpv6Prefix } from "./ipv6.ts";
import { parseIpv4 } from "./ipv4.ts";

Deno.test("parseIpv6() and formatIpv6() round-trip to RFC 5952's canonical text", () => {
  for (
    const [text, canonical] of [
      ["fd07:5fd4:b385:0:0:0:0:1", "fd07:5fd4:b385::1"],
      ["FD07:5FD4:B385::", "fd07:5fd4:b385::"],
      ["::", "::"],
      ["::1", "::1"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["2001:0db8:0000:0001:0000:0000:0000:0001", "2001:db8:0:1::1"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
      ["1:0:3:4:5:6:7:8", "1:0:3:4:5:6:7:8"],
      ["::ffff:10.122.0.5", "::ffff:a7a:5"],
      ["fd07::10.122.0.5", "fd07::a7a:5"],
    ]
  ) {
    const value = parseIpv6(text!);
    assert.notEqual(value, null, text);
    assert.equal(formatIpv6(value!), canonical, text);
  }
});

Deno.test("parseIpv6() refuses what is not an address", () => {
  for (
    const text of [
      "",
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "12345::",
      "fd07::g",
      "::1.2.3.256",
      "10.0.0.1",
    ]
  ) {
    assert.equal(parseIpv6(text), null, text);
  }
});

Deno.test("parseIpv6Prefix() gives the network and the host's ::1; ipv6ForIpv4() puts the IPv4 address in the last 32 bits", () => {
  const prefix = parseIpv6Prefix("fd07:5fd4:b385::/64");
  assert.ok(typeof prefix !== "string");
  assert.equal(prefix.gateway, "fd07:5fd4:b385::1");
  assert.equal(ipv6ForIpv4(prefix, parseIpv4("10.122.0.5")!), "fd07:5fd4:b385::a7a:5");
  assert.equal(ipv6ForIpv4(prefix, parseIpv4("10.122.255.254")!), "fd07:5fd4:b385::a7a:fffe");
});
