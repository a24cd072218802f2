import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { systemClock } from "@sluice/core";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEAD_LETTER_HEADERS } from "./dead-letter.js";
import { bytes, header, readAll, type TestBed, testBed, text } from "./test-support.js";

/**
 * Every way a handler can go wrong is a failure that follows the retry policy and ends in the
 * dead-letter topic with an error saying what happened; the partition then moves on. The real
 * clock runs here (short timeouts, no backoff) because webhooks answer over real sockets.
 */
let bed: TestBed;
let server: Server | undefined;

beforeEach(async () => {
  bed = testBed(new MemoryObjectStore(), new MemoryMetadataStore(), systemClock);
  await bed.engine.createTopic({ name: "orders", partitions: 1 });
  await bed.engine.createTopic({ name: "enriched", partitions: 1 });
  await bed.engine.createTopic({ name: "dead", partitions: 1 });
});

afterEach(async () => {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server!.close(() => resolve()));
  server = undefined;
});

/** A webhook on a free loopback port answering every batch with `answer`. */
async function webhook(answer: (response: ServerResponse) => void): Promise<string> {
  server = createServer((request, response) => {
    request.resume();
    request.on("end", () => answer(response));
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

const TIMEOUT_MS = 300;

/** Runs a processor over one poison record then one good one (a batch each) to the end. */
async function runOver(handler: Record<string, unknown>): Promise<void> {
  await bed.admin.create(
    {
      name: "enrich",
      topics: ["orders"],
      handler,
      output_topics: ["enriched"],
      dead_letter_topic: "dead",
      starting_position: "EARLIEST",
      batch_size: 1,
      retry: { max_attempts: 2, backoff_ms: 0, max_backoff_ms: 0, timeout_ms: TIMEOUT_MS },
    },
    { allowModuleHandlers: true },
  );
  await bed.engine.append({
    topic: "orders",
    records: [
      { key: null, value: bytes("poison") },
      { key: null, value: bytes("good") },
    ],
  });
  const result = await (await bed.runner("enrich", "orders", 0)).run();
  expect(result.outcome).toBe("drained");
}

async function expectDeadLettered(error: RegExp): Promise<void> {
  const dead = await readAll(bed.engine, "dead");
  expect(dead.map((record) => text(record.value))).toEqual(["poison"]);
  expect(header(dead[0]!, DEAD_LETTER_HEADERS.offset)).toBe("0");
  expect(header(dead[0]!, DEAD_LETTER_HEADERS.attempts)).toBe("2");
  expect(header(dead[0]!, DEAD_LETTER_HEADERS.error)).toMatch(error);
  const described = await bed.admin.describe("enrich");
  expect(described.partitions[0]).toMatchObject({ checkpoint: 2, lag: 0, deadLettered: 1 });
}

/** A module handler that upper-cases good records and meets "poison" with `poisoned`. */
function moduleFailing(poisoned: () => Promise<unknown>): Record<string, unknown> {
  bed.modules.set("enrich", async (batch) => {
    const record = batch.records[0]!;
    if (text(record.value) === "poison") return (await poisoned()) as never;
    return { outputs: [{ value: text(record.value)!.toUpperCase() }] };
  });
  return { type: "module", module: "enrich" };
}

describe("a handler that goes wrong", () => {
  it("by throwing: the thrown message is the error", async () => {
    await runOver(
      moduleFailing(async () => {
        throw new Error("customer service down");
      }),
    );
    await expectDeadLettered(/^customer service down$/);
    expect((await readAll(bed.engine, "enriched")).map((record) => text(record.value))).toEqual(["GOOD"]);
  });

  it("by never answering: it is abandoned at its timeout", async () => {
    await runOver(moduleFailing(() => new Promise(() => undefined)));
    await expectDeadLettered(new RegExp(`^the handler did not answer within ${TIMEOUT_MS} ms$`));
    expect((await readAll(bed.engine, "enriched")).map((record) => text(record.value))).toEqual(["GOOD"]);
  });

  it("by answering something that is not a result: the error names what is wrong", async () => {
    await runOver(moduleFailing(async () => ({ outputs: "nothing" })));
    await expectDeadLettered(/^outputs must be a list, got string "nothing"$/);
    expect((await readAll(bed.engine, "enriched")).map((record) => text(record.value))).toEqual(["GOOD"]);
  });

  it("by returning an output for a topic that is not one of its output topics: the error names it", async () => {
    await runOver(moduleFailing(async () => ({ outputs: [{ topic: "no-such-topic", value: "x" }] })));
    await expectDeadLettered(
      /^outputs\[0\] goes to topic no-such-topic, which is not one of the processor's output topics \(enriched\)$/,
    );
    expect((await readAll(bed.engine, "enriched")).map((record) => text(record.value))).toEqual(["GOOD"]);
  });

  it("as a webhook answering 500: the status and body are the error", async () => {
    const url = await webhook((response) => {
      response.writeHead(500, { "content-type": "text/plain" });
      response.end("database down");
    });
    await runOver({ type: "webhook", url });
    // Both records were refused; each is dead-lettered on its own.
    const dead = await readAll(bed.engine, "dead");
    expect(dead.map((record) => text(record.value))).toEqual(["poison", "good"]);
    for (const record of dead) {
      expect(header(record, DEAD_LETTER_HEADERS.attempts)).toBe("2");
      expect(header(record, DEAD_LETTER_HEADERS.error)).toBe(`webhook ${url} answered 500: database down`);
    }
  });

  it("as a webhook that hangs: it is abandoned at its timeout", async () => {
    const url = await webhook(() => undefined);
    await runOver({ type: "webhook", url });
    const dead = await readAll(bed.engine, "dead");
    expect(dead.map((record) => header(record, DEAD_LETTER_HEADERS.offset))).toEqual(["0", "1"]);
    for (const record of dead) {
      expect(header(record, DEAD_LETTER_HEADERS.error)).toBe(
        `the handler did not answer within ${TIMEOUT_MS} ms`,
      );
    }
  });

  it("as a webhook answering 200 with something that is not JSON", async () => {
    const url = await webhook((response) => {
      response.writeHead(200, { "content-type": "text/html" });
      response.end("<html>ok</html>");
    });
    await runOver({ type: "webhook", url });
    const dead = await readAll(bed.engine, "dead");
    expect(dead).toHaveLength(2);
    expect(header(dead[0]!, DEAD_LETTER_HEADERS.error)).toBe(
      `webhook ${url} answered something that is not JSON: <html>ok</html>`,
    );
  });
});
