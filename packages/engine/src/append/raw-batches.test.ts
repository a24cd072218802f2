import { gzipSync } from "node:zlib";
import {
  type Compression,
  ConflictError,
  crc32c,
  decodeRecordBatches,
  encodeRecordBatch,
  FencedError,
  InvalidArgumentError,
  NotFoundError,
  readBatchHeader,
} from "@sluice/core";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import {
  CountingMetadataStore,
  CountingObjectStore,
  kafkajsBatch,
  kafkajsBatches,
  SimulatedClock,
} from "@sluice/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { Engine } from "../engine.js";
import { OutOfOrderSequenceError, RecordTooLargeError } from "../errors.js";
import { DECOMPRESSED_BYTES_MAX } from "./raw-batches.js";

const CODECS: Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];
const decode = (bytes: Uint8Array | null) => (bytes === null ? null : Buffer.from(bytes).toString());

let inner: MemoryObjectStore;
let objects: CountingObjectStore;
let metadata: CountingMetadataStore;
let clock: SimulatedClock;
let engine: Engine;

beforeEach(async () => {
  inner = new MemoryObjectStore();
  objects = new CountingObjectStore(inner);
  metadata = new CountingMetadataStore(new MemoryMetadataStore());
  clock = new SimulatedClock({ startMs: 1_700_000_000_000 });
  engine = new Engine({ objects, metadata, clock });
  await engine.createTopic({ name: "orders", partitions: 4 });
});

const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const messages = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({
    key: `${prefix}-key-${i}`,
    value: `${prefix}-value-${i}`,
    headers: { trace: `t${i}` },
    timestamp: 1_700_000_000_000 + i,
  }));

async function readAll(partition: number) {
  const result = await engine.fetch({ topic: "orders", partition, offset: 0 });
  return result.records.map((record) => ({
    offset: record.offset,
    key: decode(record.key),
    value: decode(record.value),
    headers: record.headers.map((header) => [header.key, decode(header.value)]),
    timestamp: record.timestamp,
  }));
}

/** Every object written, as stored. */
async function storedObjects(): Promise<Uint8Array[]> {
  const listed = await inner.list("");
  return Promise.all(listed.objects.map(async (object) => (await inner.get(object.key)).body));
}

describe("appendBatches: batches as kafkajs encodes them", () => {
  it.each(CODECS)("stores a %s batch as sent and reads its records back", async (compression) => {
    const batch = await kafkajsBatch(messages("a", 5), { compression });
    const result = await engine.appendBatches({ topic: "orders", batches: batch, partitions: [2] });
    expect(result).toEqual({
      topic: "orders",
      duplicate: false,
      batches: [{ partition: 2, baseOffset: 0, recordCount: 5, duplicate: false }],
    });
    // Stored byte for byte: one object, the request's bytes.
    expect(await storedObjects()).toEqual([batch]);
    const records = await readAll(2);
    expect(records).toEqual(
      messages("a", 5).map((message, offset) => ({
        offset,
        key: message.key,
        value: message.value,
        headers: [["trace", message.headers.trace]],
        timestamp: message.timestamp,
      })),
    );
    // The binary read hands out the same bytes with the offset patched, still in the batch's codec.
    const fetched = await engine.fetchBatches({ topic: "orders", partition: 2, offset: 0 });
    expect(readBatchHeader(fetched.batches).compression).toBe(compression);
    expect(fetched.batches.subarray(8)).toEqual(batch.subarray(8));
  });

  it("takes batches for several partitions in one request and numbers each partition on", async () => {
    const first = await kafkajsBatches([
      { partition: 0, messages: messages("p0", 3) },
      { partition: 3, messages: messages("p3", 2) },
    ]);
    await engine.appendBatches({ topic: "orders", batches: concat(...first), partitions: [0, 3] });
    const second = await kafkajsBatches([
      { partition: 3, messages: messages("p3b", 4) },
      { partition: 0, messages: messages("p0b", 1) },
    ]);
    const result = await engine.appendBatches({
      topic: "orders",
      batches: concat(...second),
      partitions: [3, 0],
    });
    expect(result.batches).toEqual([
      { partition: 3, baseOffset: 2, recordCount: 4, duplicate: false },
      { partition: 0, baseOffset: 3, recordCount: 1, duplicate: false },
    ]);
    expect((await readAll(0)).map((record) => record.value)).toEqual([
      "p0-value-0",
      "p0-value-1",
      "p0-value-2",
      "p0b-value-0",
    ]);
    expect((await readAll(3)).map((record) => [record.offset, record.value])).toEqual([
      [0, "p3-value-0"],
      [1, "p3-value-1"],
      [2, "p3b-value-0"],
      [3, "p3b-value-1"],
      [4, "p3b-value-2"],
      [5, "p3b-value-3"],
    ]);
  });

  it("reads batches appended as records and as bytes in one partition, in order", async () => {
    await engine.append({
      topic: "orders",
      records: [{ key: null, value: Buffer.from("json"), partition: 1 }],
    });
    await engine.appendBatches({
      topic: "orders",
      batches: await kafkajsBatch(messages("b", 2)),
      partitions: [1],
    });
    expect((await readAll(1)).map((record) => [record.offset, record.value])).toEqual([
      [0, "json"],
      [1, "b-value-0"],
      [2, "b-value-1"],
    ]);
  });
});

describe("appendBatches: idempotent producers, from the batch header", () => {
  it("answers a retried batch with its original offsets and writes nothing", async () => {
    const { producerId, producerEpoch } = await engine.initProducer();
    const batches = await kafkajsBatches(
      [
        { partition: 0, messages: messages("x", 3), firstSequence: 0 },
        { partition: 1, messages: messages("y", 2), firstSequence: 0 },
      ],
      { producerId, producerEpoch },
    );
    const request = { topic: "orders", batches: concat(...batches), partitions: [0, 1] };
    const first = await engine.appendBatches(request);
    objects.reset();
    metadata.reset();
    const again = await engine.appendBatches(request);
    expect(again.duplicate).toBe(true);
    expect(again.batches.map((batch) => [batch.partition, batch.baseOffset, batch.duplicate])).toEqual([
      [0, 0, true],
      [1, 0, true],
    ]);
    expect(first.batches.map((batch) => batch.baseOffset)).toEqual([0, 0]);
    expect((await readAll(0)).length).toBe(3);
    // The retry uploads (it cannot know before the commit), but commits nothing.
    expect((await engine.partitionOffsets("orders", 0)).highWatermark).toBe(3);
    const next = await kafkajsBatch(messages("z", 1), { producerId, producerEpoch, firstSequence: 3 });
    const third = await engine.appendBatches({ topic: "orders", batches: next, partitions: [0] });
    expect(third.batches[0]).toMatchObject({ baseOffset: 3, duplicate: false });
  });

  it("refuses a sequence that skips ahead, an old epoch and an unknown producer", async () => {
    const { producerId } = await engine.initProducer();
    await engine.appendBatches({
      topic: "orders",
      batches: await kafkajsBatch(messages("a", 2), { producerId, producerEpoch: 0, firstSequence: 0 }),
      partitions: [0],
    });
    const gap = await kafkajsBatch(messages("b", 1), { producerId, producerEpoch: 0, firstSequence: 5 });
    await expect(
      engine.appendBatches({ topic: "orders", batches: gap, partitions: [0] }),
    ).rejects.toBeInstanceOf(OutOfOrderSequenceError);
    await engine.initProducer(producerId); // epoch 1 fences epoch 0
    const stale = await kafkajsBatch(messages("c", 1), { producerId, producerEpoch: 0, firstSequence: 2 });
    await expect(
      engine.appendBatches({ topic: "orders", batches: stale, partitions: [0] }),
    ).rejects.toBeInstanceOf(FencedError);
    const stranger = await kafkajsBatch(messages("d", 1), {
      producerId: 9999,
      producerEpoch: 0,
      firstSequence: 0,
    });
    await expect(
      engine.appendBatches({ topic: "orders", batches: stranger, partitions: [1] }),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect((await engine.partitionOffsets("orders", 0)).highWatermark).toBe(2);
    expect((await engine.partitionOffsets("orders", 1)).highWatermark).toBe(0);
  });

  it("remembers every batch of two appends of one producer and partition committed at once", async () => {
    const { producerId, producerEpoch } = await engine.initProducer();
    const batch = (sequence: number) =>
      kafkajsBatch(messages(`s${sequence}`, 1), { producerId, producerEpoch, firstSequence: sequence });
    await engine.appendBatches({ topic: "orders", batches: await batch(0), partitions: [0] });
    // Sequences 1 and 2 race in one process: both start from the same cached producer state.
    const [one, two] = await Promise.all(
      [1, 2].map(async (sequence) =>
        engine.appendBatches({ topic: "orders", batches: await batch(sequence), partitions: [0] }),
      ),
    );
    expect([one!.batches[0]!.baseOffset, two!.batches[0]!.baseOffset]).toEqual([1, 2]);
    // A retry of either is a duplicate answered with its offset: both are among the batches remembered.
    for (const sequence of [1, 2]) {
      const again = await engine.appendBatches({
        topic: "orders",
        batches: await batch(sequence),
        partitions: [0],
      });
      expect(again.batches[0]).toMatchObject({ baseOffset: sequence, duplicate: true });
    }
    expect((await engine.partitionOffsets("orders", 0)).highWatermark).toBe(3);
  });

  it("ignores the epoch and sequence of batches from no producer (kafkajs writes 0 for both)", async () => {
    const plain = await kafkajsBatch(messages("a", 2));
    expect(readBatchHeader(plain)).toMatchObject({ producerId: -1, producerEpoch: 0, baseSequence: 0 });
    await engine.appendBatches({ topic: "orders", batches: plain, partitions: [0] });
    await engine.appendBatches({ topic: "orders", batches: plain, partitions: [0] });
    expect((await readAll(0)).length).toBe(4);
  });
});

describe("appendBatches: topic settings", () => {
  it("gives every record the append time on a LogAppendTime topic", async () => {
    await engine.createTopic({
      name: "stamped",
      partitions: 1,
      configs: { "message.timestamp.type": "LogAppendTime" },
    });
    clock.advance(5_000);
    const result = await engine.appendBatches({
      topic: "stamped",
      batches: await kafkajsBatch(messages("a", 3), { compression: "gzip" }),
      partitions: [0],
    });
    expect(result.batches[0]!.logAppendTime).toBe(clock.now());
    const { records } = await engine.fetch({ topic: "stamped", partition: 0, offset: 0 });
    expect(records.map((record) => record.timestamp)).toEqual([clock.now(), clock.now(), clock.now()]);
  });

  it("re-compresses a batch into the codec the topic's compression.type names", async () => {
    await engine.createTopic({ name: "zipped", partitions: 1, configs: { "compression.type": "gzip" } });
    await engine.appendBatches({
      topic: "zipped",
      batches: await kafkajsBatch(messages("a", 3), { compression: "lz4" }),
      partitions: [0],
    });
    const [stored] = await storedObjects();
    expect(readBatchHeader(stored!).compression).toBe("gzip");
    const { records } = await engine.fetch({ topic: "zipped", partition: 0, offset: 0 });
    expect(records.map((record) => decode(record.value))).toEqual(["a-value-0", "a-value-1", "a-value-2"]);
  });

  it("corrects a maxTimestamp that disagrees with the records, so lookups by time find them", async () => {
    const batch = await encodeRecordBatch(
      [
        { key: null, value: Buffer.from("early"), timestamp: 1_000 },
        { key: null, value: Buffer.from("late"), timestamp: 9_000 },
      ],
      { compression: "none" },
    );
    // A header claiming an earlier maxTimestamp, with a CRC that matches the lie.
    const lying = batch.slice();
    new DataView(lying.buffer).setBigInt64(35, 2_000n);
    new DataView(lying.buffer).setUint32(17, crc32c(lying.subarray(21)));
    await engine.appendBatches({ topic: "orders", batches: lying, partitions: [0] });
    expect(await engine.offsetForTimestamp("orders", 0, 5_000)).toBe(1);
    const [stored] = await storedObjects();
    expect(readBatchHeader(stored!).maxTimestamp).toBe(9_000);
    expect((await decodeRecordBatches(stored!))[0]!.records.length).toBe(2);
  });

  it("remembers an idempotency key: the same bytes again write nothing, other bytes are a conflict", async () => {
    const batch = await kafkajsBatch(messages("a", 2));
    const request = { topic: "orders", batches: batch, partitions: [1], idempotencyKey: "k-1" };
    const first = await engine.appendBatches(request);
    metadata.reset();
    objects.reset();
    const again = await engine.appendBatches(request);
    expect(again).toEqual({ ...first, duplicate: true, batches: [{ ...first.batches[0], duplicate: true }] });
    expect(objects.writes + metadata.writes).toBe(0);
    const other = await kafkajsBatch(messages("b", 2));
    await expect(engine.appendBatches({ ...request, batches: other })).rejects.toBeInstanceOf(ConflictError);
  });
});

describe("appendBatches: bad input is refused with nothing written", () => {
  const good = () => kafkajsBatch(messages("a", 3));
  const withCrc = (bytes: Uint8Array) => {
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(17, crc32c(bytes.subarray(21)));
    return bytes;
  };
  const cases: [string, () => Promise<{ batches: Uint8Array; partitions: number[] }>, RegExp, unknown][] = [
    [
      "a bad CRC",
      async () => {
        const bytes = await good();
        bytes[bytes.length - 1]! ^= 0xff;
        return { batches: bytes, partitions: [0] };
      },
      /batch 0 \(partition 0\) failed its CRC-32C check/,
      InvalidArgumentError,
    ],
    [
      "a bad magic byte",
      async () => {
        const bytes = await good();
        bytes[16] = 1;
        return { batches: bytes, partitions: [0] };
      },
      /batch 0 \(partition 0\) has magic 1; only RecordBatch v2/,
      InvalidArgumentError,
    ],
    [
      "a truncated batch",
      async () => ({ batches: (await good()).subarray(0, 70), partitions: [0] }),
      /declares \d+ bytes but only 70 remain in the body \(truncated\)/,
      InvalidArgumentError,
    ],
    [
      "a body shorter than a header",
      async () => ({ batches: (await good()).subarray(0, 20), partitions: [0] }),
      /is 20 bytes, shorter than a record batch header/,
      InvalidArgumentError,
    ],
    [
      "a record count above the records present",
      async () => {
        const bytes = await good();
        new DataView(bytes.buffer, bytes.byteOffset).setInt32(57, 4);
        new DataView(bytes.buffer, bytes.byteOffset).setInt32(23, 3);
        return { batches: withCrc(bytes), partitions: [0] };
      },
      /record 3 is truncated|more than its \d+ bytes of records/,
      InvalidArgumentError,
    ],
    [
      "a record count below the records present",
      async () => {
        const bytes = await good();
        new DataView(bytes.buffer, bytes.byteOffset).setInt32(57, 2);
        new DataView(bytes.buffer, bytes.byteOffset).setInt32(23, 1);
        return { batches: withCrc(bytes), partitions: [0] };
      },
      /bytes left over after its 2 records \(its record count is wrong\)/,
      InvalidArgumentError,
    ],
    [
      "a lastOffsetDelta that disagrees with the record count",
      async () => {
        const bytes = await good();
        new DataView(bytes.buffer, bytes.byteOffset).setInt32(23, 7);
        return { batches: withCrc(bytes), partitions: [0] };
      },
      /says it holds 3 records but its lastOffsetDelta is 7/,
      InvalidArgumentError,
    ],
    [
      "a record over the topic's max.message.bytes",
      async () => ({
        batches: await kafkajsBatch([{ value: "x".repeat(2_000_000) }], { compression: "gzip" }),
        partitions: [0],
      }),
      /batch 0 \(partition 0\) record 0 is 2000000 bytes .* over the topic's max.message.bytes of 1048576/,
      RecordTooLargeError,
    ],
    [
      "a compressed payload that would decompress to more than a request may hold",
      async () => {
        const header = (await kafkajsBatch(messages("a", 1), { compression: "gzip" })).subarray(0, 61);
        const bomb = gzipSync(Buffer.alloc(DECOMPRESSED_BYTES_MAX + 1));
        const bytes = new Uint8Array(Buffer.concat([header, bomb]));
        new DataView(bytes.buffer, bytes.byteOffset).setInt32(8, bytes.length - 12);
        return { batches: withCrc(bytes), partitions: [0] };
      },
      /batch 0 \(partition 0\): gzip payload of \d+ bytes decompresses to more than the 134217728-byte limit: a request's compressed batches may decompress to 134217728 bytes in all/,
      RecordTooLargeError,
    ],
    [
      "an idempotent producer id with no epoch",
      async () => ({
        batches: await encodeRecordBatch([{ key: null, value: null, timestamp: 1 }], {
          compression: "none",
          producerId: 3,
          producerEpoch: -1,
          baseSequence: 0,
        }),
        partitions: [0],
      }),
      /has producerId 3 but producerEpoch -1/,
      InvalidArgumentError,
    ],
    [
      "batches of one request from different producers",
      async () => {
        const a = await kafkajsBatch(messages("a", 1), { producerId: 1, producerEpoch: 0, firstSequence: 0 });
        const b = await kafkajsBatch(messages("b", 1), { producerId: 2, producerEpoch: 0, firstSequence: 0 });
        return { batches: concat(a, b), partitions: [0, 1] };
      },
      /batch 1 \(partition 1\) is from producer 2 epoch 0 but batch 0 from producer 1 epoch 0/,
      InvalidArgumentError,
    ],
    [
      "an idempotent batch beside a plain one",
      async () => {
        const a = await kafkajsBatch(messages("a", 1));
        const b = await kafkajsBatch(messages("b", 1), { producerId: 2, producerEpoch: 0, firstSequence: 0 });
        return { batches: concat(a, b), partitions: [0, 1] };
      },
      /batch 1 \(partition 1\) is from idempotent producer 2 but batch 0 \(partition 0\) is from no producer/,
      InvalidArgumentError,
    ],
    [
      "a transactional batch",
      async () => {
        const bytes = await good();
        const view = new DataView(bytes.buffer, bytes.byteOffset);
        view.setInt16(21, view.getInt16(21) | 0x10);
        return { batches: withCrc(bytes), partitions: [0] };
      },
      /is transactional; transactions are not supported/,
      InvalidArgumentError,
    ],
    [
      "an unknown codec",
      async () => {
        const bytes = await good();
        const view = new DataView(bytes.buffer, bytes.byteOffset);
        view.setInt16(21, 6);
        return { batches: withCrc(bytes), partitions: [0] };
      },
      /is malformed: unknown compression codec id 6/,
      InvalidArgumentError,
    ],
    [
      "a compressed payload that does not decompress",
      async () => {
        const bytes = await kafkajsBatch(messages("a", 3), { compression: "gzip" });
        // The gzip trailer's CRC-32 of the uncompressed data.
        bytes[bytes.length - 6] = bytes[bytes.length - 6]! ^ 0xff;
        return { batches: withCrc(bytes), partitions: [0] };
      },
      /is malformed: gzip payload of \d+ bytes failed to decompress/,
      InvalidArgumentError,
    ],
    [
      "offset deltas that are not 0, 1, 2",
      async () => {
        const batch = await encodeRecordBatch(
          [
            { key: null, value: Buffer.from("a"), timestamp: 1 },
            { key: null, value: Buffer.from("b"), timestamp: 1 },
          ],
          { compression: "none" },
        );
        // Record 1's offsetDelta (zigzag 1 = 0x02) becomes 5 (0x0a): the record length is unchanged.
        const second = batch.indexOf(0x02, 61 + 9);
        batch[second] = 0x0a;
        return { batches: withCrc(batch), partitions: [0] };
      },
      /record 1 has offsetDelta 5; a producer batch numbers its records 0, 1, 2/,
      InvalidArgumentError,
    ],
    [
      "fewer batches than partitions named",
      async () => ({ batches: await good(), partitions: [0, 1] }),
      /the body holds 1 record batch but 2 partitions were named/,
      InvalidArgumentError,
    ],
    [
      "more batches than partitions named",
      async () => ({ batches: concat(await good(), await good()), partitions: [0] }),
      /the body holds more than the 1 record batch named/,
      InvalidArgumentError,
    ],
    [
      "a partition named twice",
      async () => ({ batches: concat(await good(), await good()), partitions: [1, 1] }),
      /partition 1 is named twice/,
      InvalidArgumentError,
    ],
    [
      "a partition the topic does not have",
      async () => ({ batches: await good(), partitions: [4] }),
      /partition 4 does not exist; topic orders has 4 partitions/,
      InvalidArgumentError,
    ],
  ];

  it.each(cases)("%s", async (_name, build, message, type) => {
    const request = await build();
    metadata.reset();
    objects.reset();
    const attempt = engine.appendBatches({ topic: "orders", ...request });
    await expect(attempt).rejects.toThrow(message);
    await expect(attempt).rejects.toBeInstanceOf(type);
    expect(objects.writes).toBe(0);
    expect(metadata.writes).toBe(0);
    for (let partition = 0; partition < 4; partition++) {
      expect((await engine.partitionOffsets("orders", partition)).highWatermark).toBe(0);
    }
  });

  it("refuses a bad batch after a good one: nothing of the request is written", async () => {
    const bad = await good();
    bad[16] = 0;
    objects.reset();
    metadata.reset();
    const attempt = engine.appendBatches({
      topic: "orders",
      batches: concat(await good(), bad),
      partitions: [0, 1],
    });
    await expect(attempt).rejects.toThrow(/batch 1 \(partition 1\) has magic 0/);
    expect(objects.writes + metadata.writes).toBe(0);
  });
});
