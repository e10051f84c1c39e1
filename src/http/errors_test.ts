import assert from "node:assert/strict";
import { InvalidDomainError, InvalidDomainXmlError } from "../domain/mod.ts";
import { MacMismatchError, UnknownGuestError } from "../guest_api/mod.ts";
import { NotUtf8Error, TextTooLargeError } from "../io/mod.ts";
import type { Logger } from "../log/mod.ts";
import {
  AddressConflictError,
  InstanceIdConflictError,
  NoManagedInterfaceError,
  PoolFullError,
  StoreBusyError,
  StoreFullError,
} from "../store/mod.ts";
import { RecordFilesFullError } from "../dnsmasq/mod.ts";
import { errorToResponse, HttpError } from "./errors.ts";

function recordingLog(): { log: Logger; errors: string[] } {
  const errors: string[] = [];
  const ignore = () => {};
  return { log: { debug: ignore, info: ignore, warning: ignore, error: (line) => errors.push(line) }, errors };
}

async function answer(error: unknown): Promise<[number, string, string[]]> {
  const { log, errors } = recordingLog();
  const response = errorToResponse(error, log, "test");
  return [response.status, await response.text(), errors];
}

Deno.test("errorToResponse() answers each domain error with its status and message, logging nothing", async () => {
  const cases: [Error, number, string][] = [
    [
      new InvalidDomainXmlError("Cannot parse domain XML: line 1"),
      400,
      "invalid domain XML: Cannot parse domain XML: line 1\n",
    ],
    [
      new InvalidDomainError("domain XML has no <name> element"),
      400,
      "invalid domain XML: domain XML has no <name> element\n",
    ],
    [new NoManagedInterfaceError('domain "a" has no interface'), 422, 'domain "a" has no interface\n'],
    [new AddressConflictError("MAC taken"), 409, "MAC taken\n"],
    [new InstanceIdConflictError("instance-id taken"), 409, "instance-id taken\n"],
    [new PoolFullError("the address pool is full"), 507, "the address pool is full\n"],
    [new StoreBusyError("busy"), 503, "busy\n"],
    [
      new StoreFullError(),
      507,
      "the instance store is full (no space left on its disk); free space where kv_file is\n",
    ],
    [
      new RecordFilesFullError("a", "/b"),
      507,
      'cannot write the dnsmasq records of "a": no space left under /b; the upload was not stored\n',
    ],
    [new TextTooLargeError("request body", 10), 413, "request body over 10 bytes\n"],
    [new NotUtf8Error("request body"), 400, "request body is not valid UTF-8\n"],
    [new UnknownGuestError("10.0.0.9"), 404, "unknown client 10.0.0.9: no instance has this address\n"],
    [new MacMismatchError("10.0.0.9", "MAC differs"), 403, "refused 10.0.0.9: MAC differs\n"],
    [new HttpError(405, "method PUT not allowed here"), 405, "method PUT not allowed here\n"],
  ];
  for (const [error, status, body] of cases) {
    assert.deepEqual(await answer(error), [status, body, []], error.name);
  }
});

Deno.test("errorToResponse() turns a bug into a 500 whose cause goes to the log only, whatever it carries", async () => {
  // A TypeError from a bug, even one that looks like a client error or carries a status, is never a 4xx.
  const bug = Object.assign(new TypeError("Cannot read properties of undefined (reading 'mac')"), { status: 400 });
  const [status, body, errors] = await answer(bug);
  assert.equal(status, 500);
  assert.equal(body, "internal error; see the mdserver log\n");
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /^test: internal error: TypeError: Cannot read properties of undefined/);
  assert.equal((await answer(new SyntaxError("Unexpected token")))[0], 500);
});
