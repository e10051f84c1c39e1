import assert from "node:assert/strict";
import { requestLineUrl } from "./request_target.ts";

function requestWithHost(host: string | null, target: string): Request {
  // What Deno.serve hands over: the URL built from the Host header and the target.
  const url = host === null || host === "" ? `http://localhost:8169${target}` : `http://${host}${target}`;
  const request = Object.create(Request.prototype) as Request;
  Object.defineProperty(request, "url", { value: url });
  Object.defineProperty(request, "headers", { value: new Headers(host === null ? {} : { host }) });
  return request;
}

Deno.test("requestLineUrl() takes the path from the request line whatever the Host header says", () => {
  for (
    const host of [null, "", "169.254.169.254", "[", "%", "a b", ":99999", "x/latest/user-data?", "x#y", "u@h", "x\\y"]
  ) {
    const url = requestLineUrl(requestWithHost(host, "/latest/meta-data/instance-id?q=1"));
    assert.equal(url?.pathname, "/latest/meta-data/instance-id", `Host ${JSON.stringify(host)}`);
    assert.equal(url?.search, "?q=1");
    assert.equal(url?.host, "request-line.invalid");
  }
});

Deno.test("requestLineUrl() keeps a target that starts with // a path", () => {
  assert.equal(requestLineUrl(requestWithHost("h", "//evil/latest/user-data"))?.pathname, "//evil/latest/user-data");
});
