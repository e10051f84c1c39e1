/**
 * `GET /v1/instances?limit=N&after=UUID` answers the list in pages: each
 * page at most N instances in UUID order, `x-next-after` on a full page
 * naming where the next begins; the pages together are the whole list.
 */
import assert from "node:assert/strict";
import { startTestService } from "./_harness.ts";

Deno.test("admin API: the instance list in pages adds up to the whole list", async () => {
  const t = await startTestService();
  try {
    for (let index = 1; index <= 5; index++) {
      await t.register({
        name: `page0${index}`,
        uuid: `0000000d-0000-4000-8000-00000000000${6 - index}`,
        mac: `52:54:00:0d:00:0${index}`,
      });
    }
    const whole = (await (await t.adminFetch("/v1/instances")).json()) as { uuid: string }[];
    assert.equal(whole.length, 5);
    const paged: string[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const response = await t.adminFetch(`/v1/instances?limit=2${after === null ? "" : `&after=${after}`}`);
      assert.equal(response.status, 200);
      const page = (await response.json()) as { uuid: string; name: string }[];
      assert.ok(page.length <= 2);
      paged.push(...page.map((instance) => instance.uuid));
      after = response.headers.get("x-next-after");
      if (after === null) break;
      assert.equal(after, page[page.length - 1]!.uuid);
    }
    assert.deepEqual(paged, whole.map((instance) => instance.uuid));
    assert.deepEqual(paged, [...paged].sort());
    for (
      const bad of [
        "limit=0",
        "limit=x",
        "limit=10001",
        "after=0000000d-0000-4000-8000-000000000001",
        "limit=2&after=nope",
      ]
    ) {
      const response = await t.adminFetch(`/v1/instances?${bad}`);
      await response.body?.cancel();
      assert.equal(response.status, 400, bad);
    }
  } finally {
    await t.close();
  }
});
