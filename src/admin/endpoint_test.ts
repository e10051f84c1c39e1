import assert from "node:assert/strict";
import { adminBaseUrl, type EndpointFileSystem, readAdminEndpoint } from "./endpoint.ts";

function fakeFs(files: Record<string, string>): EndpointFileSystem {
  const notFound = (path: string) => new Deno.errors.NotFound(`no such file "${path}"`);
  return {
    readTextFile(path) {
      const text = files[path];
      return text === undefined ? Promise.reject(notFound(path)) : Promise.resolve(text);
    },
    readDir(path) {
      const prefix = `${path}/`;
      const names = Object.keys(files).filter((name) => name.startsWith(prefix))
        .map((name) => name.slice(prefix.length));
      return names.length === 0 ? Promise.reject(notFound(path)) : Promise.resolve(names);
    },
  };
}

Deno.test("readAdminEndpoint() falls back to the socket /run/mdserver/admin.sock, TCP off, without an [admin] section", async () => {
  const endpoint = await readAdminEndpoint(
    "/etc/mdserver/mdserver.conf",
    fakeFs({
      "/etc/mdserver/mdserver.conf": "[mdserver]\nport = 80\n",
    }),
  );
  assert.deepEqual(endpoint, {
    address: "127.0.0.1",
    port: 8774,
    tcp: false,
    socket: "/run/mdserver/admin.sock",
    tokenFile: "/etc/mdserver/admin.token",
    socketTimeoutMs: 700,
    files: ["/etc/mdserver/mdserver.conf"],
  });
  assert.equal(adminBaseUrl(endpoint), "http://127.0.0.1:8774");
});

Deno.test("readAdminEndpoint() applies [_include_] directories then files, the last value winning", async () => {
  const endpoint = await readAdminEndpoint(
    "/etc/mdserver/mdserver.conf",
    fakeFs({
      "/etc/mdserver/mdserver.conf": [
        "[admin]",
        "port = 9000",
        "socket = None",
        "[_include_]",
        "directories = conf.d:/missing.d",
        "files = local.conf:/missing.conf",
      ].join("\n"),
      "/etc/mdserver/conf.d/20-admin.conf": "[admin]\nport = 9020\nsocket = ../run/admin.sock\n",
      "/etc/mdserver/conf.d/10-admin.conf": "[admin]\nport = 9010\nlisten_address = ::1\n",
      "/etc/mdserver/conf.d/README": "not ini at all",
      "/etc/mdserver/local.conf": "[admin]\nport = 9030\n",
    }),
  );
  assert.deepEqual(endpoint, {
    address: "::1",
    port: 9030,
    tcp: true,
    socket: "/etc/mdserver/run/admin.sock",
    tokenFile: "/etc/mdserver/admin.token",
    socketTimeoutMs: 700,
    files: [
      "/etc/mdserver/mdserver.conf",
      "/etc/mdserver/conf.d/10-admin.conf",
      "/etc/mdserver/conf.d/20-admin.conf",
      "/etc/mdserver/local.conf",
    ],
  });
  assert.equal(adminBaseUrl(endpoint), "http://[::1]:9030");
});

Deno.test("readAdminEndpoint() names the file when it cannot be read or holds a bad port", async () => {
  await assert.rejects(
    readAdminEndpoint("/etc/mdserver/mdserver.conf", fakeFs({})),
    /cannot read configuration "\/etc\/mdserver\/mdserver.conf"/,
  );
  await assert.rejects(
    readAdminEndpoint(
      "/etc/mdserver/mdserver.conf",
      fakeFs({ "/etc/mdserver/mdserver.conf": "[admin]\nport = http\n" }),
    ),
    /"\/etc\/mdserver\/mdserver.conf": line 2: \[admin\] port "http" is not a port number/,
  );
  await assert.rejects(
    readAdminEndpoint(
      "/etc/mdserver/mdserver.conf",
      fakeFs({ "/etc/mdserver/mdserver.conf": "port = 1\n" }),
    ),
    SyntaxError,
  );
});
