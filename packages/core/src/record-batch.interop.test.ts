/**
 * Interoperability with an independent implementation of RecordBatch v2: kafkajs's encoder and
 * decoder (its internal protocol modules, loaded with createRequire). Both directions, for every
 * codec.
 *
 * Limits of this check:
 * - kafkajs implements only gzip itself. For snappy, lz4 and zstd we register codecs into its
 *   codec table that call our own compression functions, so those cases check our batch framing,
 *   attributes and record layout against kafkajs, not the codec payloads themselves (those are
 *   covered in compression.test.ts against the formats' own definitions).
 * - kafkajs does not verify CRCs when decoding, so we check our CRC against its CRC-32C function.
 * - kafkajs cannot encode a null header value (it measures the value before its null check), so
 *   the kafkajs-to-Sluice direction uses non-null header values only.
 */
import { createRequire } from "node:module";
import fc from "fast-check";
import { compress as rawSnappyCompress } from "snappy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Compression, compress, decompress, isXerialSnappy } from "./compression.js";
import { crc32c } from "./crc32c.js";
import {
  decodeRecordBatches,
  encodeRecordBatch,
  RECORD_BATCH_HEADER_SIZE,
  type Record,
} from "./record-batch.js";

// ---- kafkajs internals, typed to what these tests touch ----

const require = createRequire(import.meta.url);

interface KafkajsEncoder {
  buffer: Buffer;
}
interface KafkajsCodec {
  compress(encoder: KafkajsEncoder): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}
type KafkajsHeaders = { [key: string]: Buffer | Buffer[] | null };
interface KafkajsDecodedRecord {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: { [key: string]: Buffer | null | (Buffer | null)[] };
}
interface KafkajsDecodedBatch {
  firstOffset: string;
  firstTimestamp: string;
  maxTimestamp: string;
  partitionLeaderEpoch: number;
  inTransaction: boolean;
  isControlBatch: boolean;
  lastOffsetDelta: number;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  timestampType: number;
  records: KafkajsDecodedRecord[];
}

const { RecordBatch: kafkajsRecordBatch } = require("kafkajs/src/protocol/recordBatch/v0") as {
  RecordBatch(args: {
    compression: number;
    firstOffset: bigint;
    firstTimestamp: number;
    maxTimestamp: number;
    partitionLeaderEpoch: number;
    lastOffsetDelta: number;
    producerId: bigint;
    producerEpoch: number;
    firstSequence: number;
    records: KafkajsEncoder[];
  }): Promise<KafkajsEncoder>;
};
const kafkajsRecord = require("kafkajs/src/protocol/recordBatch/record/v0") as (args: {
  offsetDelta: number;
  timestampDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: KafkajsHeaders;
}) => KafkajsEncoder;
const kafkajsDecodeBatch = require("kafkajs/src/protocol/recordBatch/v0/decoder") as (
  decoder: unknown,
) => Promise<KafkajsDecodedBatch>;
/** kafkajs's Fetch v4+ path: a size-prefixed run of batches, as a fetch response carries them. */
const kafkajsDecodeMessages = require("kafkajs/src/protocol/requests/fetch/v4/decodeMessages") as (
  decoder: unknown,
) => Promise<KafkajsDecodedRecord[]>;
const KafkajsDecoder = require("kafkajs/src/protocol/decoder") as new (buffer: Buffer) => unknown;
const kafkajsCrc32c = require("kafkajs/src/protocol/recordBatch/crc32C") as (buffer: Buffer) => number;
const { Codecs: kafkajsCodecs } = require("kafkajs/src/protocol/message/compression") as {
  Codecs: { [code: number]: () => KafkajsCodec };
};
const TIMESTAMP_TYPE_LOG_APPEND = 1;

const CODE: { [C in Compression]: number } = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 };
const CODECS: Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const bufferOrNull = (bytes: Uint8Array | null) => (bytes === null ? null : asBuffer(bytes));

/** Our codec functions behind kafkajs's codec interface (kafkajs lacks snappy, lz4, zstd). */
function ourCodec(compression: Compression): () => KafkajsCodec {
  return () => ({
    compress: async (encoder) => asBuffer(await compress(compression, encoder.buffer)),
    decompress: async (buffer) => asBuffer(await decompress(compression, buffer)),
  });
}

const savedCodecs = { ...kafkajsCodecs };
beforeAll(() => {
  kafkajsCodecs[CODE.snappy] = ourCodec("snappy");
  kafkajsCodecs[CODE.lz4] = ourCodec("lz4");
  kafkajsCodecs[CODE.zstd] = ourCodec("zstd");
});
afterAll(() => {
  for (const code of [CODE.snappy, CODE.lz4, CODE.zstd]) kafkajsCodecs[code] = savedCodecs[code]!;
});

// ---- generators ----

const bytes = fc.uint8Array({ maxLength: 40 });
const bytesOrNull = fc.option(bytes, { nil: null, freq: 4 });
const headerKey = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 8 }),
  fc.constantFrom("h", "ключ", "🔑", "7"),
);
const timestamp = fc.oneof(
  fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
  fc.integer({ min: 0, max: 2 ** 52 }),
);
const record: fc.Arbitrary<Record> = fc.record({
  key: bytesOrNull,
  value: bytesOrNull,
  headers: fc.array(fc.record({ key: headerKey, value: bytesOrNull }), { maxLength: 4 }),
  timestamp,
});

/** kafkajs folds headers into an object, repeated keys into arrays in wire order. */
function foldHeaders(headers: Record["headers"]): KafkajsDecodedRecord["headers"] {
  const folded: KafkajsDecodedRecord["headers"] = {};
  for (const { key, value } of headers) {
    const previous = folded[key];
    const buffer = bufferOrNull(value);
    if (previous === undefined) folded[key] = buffer;
    else folded[key] = Array.isArray(previous) ? [...previous, buffer] : [previous, buffer];
  }
  return folded;
}

function sizePrefixed(batches: Uint8Array): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeInt32BE(batches.length);
  return Buffer.concat([prefix, batches]);
}

describe("Sluice-encoded batches decode in kafkajs", () => {
  it("for every codec: header fields, offsets, timestamps, keys, values, headers, CRC", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(record, { minLength: 1, maxLength: 20 }),
        fc.constantFrom(...CODECS),
        fc.integer({ min: 0, max: 2 ** 50 }),
        fc.integer({ min: -1, max: 2 ** 40 }),
        fc.integer({ min: -1, max: 0x7fff }),
        fc.integer({ min: -1, max: 1_000_000 }),
        async (records, compression, baseOffset, producerId, producerEpoch, baseSequence) => {
          const ours = await encodeRecordBatch(records, {
            compression,
            baseOffset,
            producerId,
            producerEpoch,
            baseSequence,
          });
          const batch = await kafkajsDecodeBatch(new KafkajsDecoder(asBuffer(ours)));
          const timestamps = records.map((r) => r.timestamp);
          expect(batch).toMatchObject({
            firstOffset: String(baseOffset),
            firstTimestamp: String(Math.min(...timestamps)),
            maxTimestamp: String(Math.max(...timestamps)),
            lastOffsetDelta: records.length - 1,
            producerId: String(producerId),
            producerEpoch,
            firstSequence: baseSequence,
            inTransaction: false,
            isControlBatch: false,
            partitionLeaderEpoch: -1,
          });
          expect(batch.records).toHaveLength(records.length);
          batch.records.forEach((decoded, i) => {
            const original = records[i]!;
            expect(decoded.offset).toBe(String(baseOffset + i));
            expect(decoded.timestamp).toBe(String(original.timestamp));
            expect(decoded.key).toEqual(bufferOrNull(original.key));
            expect(decoded.value).toEqual(bufferOrNull(original.value));
            expect(decoded.headers).toEqual(foldHeaders(original.headers));
          });
          // kafkajs does not check CRCs on decode; check ours with its CRC-32C instead.
          expect(kafkajsCrc32c(asBuffer(ours.subarray(21)))).toBe(asBuffer(ours).readUInt32BE(17));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("log-append time: kafkajs sees the timestamp type and the batch's maxTimestamp", async () => {
    const records = [5, 9, 7].map((t) => ({
      key: null,
      value: null,
      headers: [],
      timestamp: 1_700_000_000_000 + t,
    }));
    const ours = await encodeRecordBatch(records, { compression: "gzip", timestampType: "log_append" });
    const batch = await kafkajsDecodeBatch(new KafkajsDecoder(asBuffer(ours)));
    expect(batch.timestampType).toBe(TIMESTAMP_TYPE_LOG_APPEND);
    expect(batch.records.map((r) => r.timestamp)).toEqual(Array(3).fill("1700000000009"));
  });

  it("concatenated batches decode through kafkajs's fetch-response path", async () => {
    const parts = await Promise.all(
      CODECS.map((compression, i) =>
        encodeRecordBatch(
          [
            { key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), headers: [], timestamp: 1000 + i },
            {
              key: null,
              value: Buffer.from(`w${i}`),
              headers: [{ key: "c", value: null }],
              timestamp: 2000 + i,
            },
          ],
          { compression, baseOffset: i * 2 },
        ),
      ),
    );
    const records = await kafkajsDecodeMessages(new KafkajsDecoder(sizePrefixed(Buffer.concat(parts))));
    expect(records.map((r) => r.offset)).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
    expect(records.map((r) => r.value?.toString())).toEqual(CODECS.flatMap((_, i) => [`v${i}`, `w${i}`]));
  });
});

describe("kafkajs-encoded batches decode in Sluice", () => {
  interface KafkajsInput {
    key: Buffer | null;
    value: Buffer | null;
    headers: KafkajsHeaders;
    timestamp: number;
  }
  // kafkajs header values: one Buffer or several under one key; never null (see the file comment).
  const kafkajsHeaders = fc.dictionary(
    headerKey,
    fc.oneof(
      bytes.map((b) => Buffer.from(b)),
      fc.array(
        bytes.map((b) => Buffer.from(b)),
        { minLength: 1, maxLength: 3 },
      ),
    ),
    { maxKeys: 4 },
  );
  const kafkajsInput: fc.Arbitrary<KafkajsInput> = fc.record({
    key: bytesOrNull.map(bufferOrNull),
    value: bytesOrNull.map(bufferOrNull),
    headers: kafkajsHeaders,
    timestamp,
  });

  async function encodeWithKafkajs(
    inputs: KafkajsInput[],
    options: {
      compression: number;
      baseOffset: bigint;
      producerId: bigint;
      producerEpoch: number;
      firstSequence: number;
    },
  ): Promise<Buffer> {
    const firstTimestamp = Math.min(...inputs.map((m) => m.timestamp));
    const batch = await kafkajsRecordBatch({
      compression: options.compression,
      firstOffset: options.baseOffset,
      firstTimestamp,
      maxTimestamp: Math.max(...inputs.map((m) => m.timestamp)),
      partitionLeaderEpoch: 0,
      lastOffsetDelta: inputs.length - 1,
      producerId: options.producerId,
      producerEpoch: options.producerEpoch,
      firstSequence: options.firstSequence,
      records: inputs.map((m, i) =>
        kafkajsRecord({
          offsetDelta: i,
          timestampDelta: m.timestamp - firstTimestamp,
          key: m.key,
          value: m.value,
          headers: m.headers,
        }),
      ),
    });
    return batch.buffer;
  }

  /** Headers in kafkajs's wire order: object keys in order, array values flattened. */
  function unfold(headers: KafkajsHeaders): Record["headers"] {
    return Object.keys(headers).flatMap((key) => {
      const value = headers[key]!;
      return (Array.isArray(value) ? value : [value]).map((v) => ({
        key,
        value: v === null ? null : new Uint8Array(v),
      }));
    });
  }

  it("for every codec, with CRC verification on our side", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(kafkajsInput, { minLength: 1, maxLength: 20 }),
        fc.constantFrom(...CODECS),
        fc.bigInt({ min: 0n, max: 2n ** 50n }),
        fc.bigInt({ min: -1n, max: 2n ** 40n }),
        fc.integer({ min: 0, max: 0x7fff }),
        fc.integer({ min: 0, max: 1_000_000 }),
        async (inputs, compression, baseOffset, producerId, producerEpoch, firstSequence) => {
          const theirs = await encodeWithKafkajs(inputs, {
            compression: CODE[compression],
            baseOffset,
            producerId,
            producerEpoch,
            firstSequence,
          });
          const [batch, ...rest] = await decodeRecordBatches(theirs);
          expect(rest).toHaveLength(0);
          expect(batch).toMatchObject({
            baseOffset: Number(baseOffset),
            lastOffsetDelta: inputs.length - 1,
            compression,
            timestampType: "create",
            producerId: Number(producerId),
            producerEpoch,
            baseSequence: firstSequence,
            recordCount: inputs.length,
            partitionLeaderEpoch: 0,
            byteLength: theirs.length,
          });
          expect(batch!.records).toEqual(
            inputs.map((m, i) => ({
              offset: Number(baseOffset) + i,
              timestamp: m.timestamp,
              key: m.key === null ? null : new Uint8Array(m.key),
              value: m.value === null ? null : new Uint8Array(m.value),
              headers: unfold(m.headers),
            })),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it("concatenated kafkajs batches decode as a run", async () => {
    const one = { key: Buffer.from("a"), value: Buffer.from("1"), headers: {}, timestamp: 10 };
    const options = { baseOffset: 0n, producerId: -1n, producerEpoch: 0, firstSequence: 0 };
    const run = Buffer.concat(
      await Promise.all(
        CODECS.map((compression, i) =>
          encodeWithKafkajs([one, { ...one, timestamp: 11 }], {
            ...options,
            compression: CODE[compression],
            baseOffset: BigInt(i * 2),
          }),
        ),
      ),
    );
    const batches = await decodeRecordBatches(run);
    expect(batches.map((b) => b.compression)).toEqual(CODECS);
    expect(batches.flatMap((b) => b.records.map((r) => r.offset))).toEqual(
      Array.from({ length: 10 }, (_, i) => i),
    );
  });
});

describe("snappy framing across implementations", () => {
  const records: Record[] = Array.from({ length: 2000 }, (_, i) => ({
    key: Buffer.from(`key-${i}`),
    value: Buffer.from(`value-${i}-${"s".repeat(i % 50)}`),
    headers: [],
    timestamp: 1_700_000_000_000 + i,
  }));

  it("we write xerial framing, across several 32 KiB blocks, and it round-trips", async () => {
    const ours = await encodeRecordBatch(records, { compression: "snappy" });
    expect(isXerialSnappy(ours.subarray(RECORD_BATCH_HEADER_SIZE))).toBe(true);
    const [batch] = await decodeRecordBatches(ours);
    expect(batch!.records.map((r) => Buffer.from(r.value!).toString())).toEqual(
      records.map((r) => Buffer.from(r.value!).toString()),
    );
  });

  it("we read batches whose payload is raw (unframed) snappy", async () => {
    // A producer writing raw snappy blocks, as some non-Java clients do.
    const rawSnappy: KafkajsCodec = {
      compress: async (encoder) => rawSnappyCompress(encoder.buffer),
      decompress: async () => {
        throw new Error("not used");
      },
    };
    const previous = kafkajsCodecs[CODE.snappy]!;
    kafkajsCodecs[CODE.snappy] = () => rawSnappy;
    try {
      const theirs = await kafkajsRecordBatch({
        compression: CODE.snappy,
        firstOffset: 0n,
        firstTimestamp: 1,
        maxTimestamp: 1,
        partitionLeaderEpoch: 0,
        lastOffsetDelta: 1,
        producerId: -1n,
        producerEpoch: 0,
        firstSequence: 0,
        records: [0, 1].map((i) =>
          kafkajsRecord({
            offsetDelta: i,
            timestampDelta: 0,
            key: null,
            value: Buffer.from(`raw ${i}`),
            headers: {},
          }),
        ),
      });
      expect(isXerialSnappy(theirs.buffer.subarray(RECORD_BATCH_HEADER_SIZE))).toBe(false);
      const [batch] = await decodeRecordBatches(theirs.buffer);
      expect(batch!.records.map((r) => Buffer.from(r.value!).toString())).toEqual(["raw 0", "raw 1"]);
    } finally {
      kafkajsCodecs[CODE.snappy] = previous;
    }
  });

  it("the CRC we verify is kafkajs's CRC-32C", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (data) => {
        expect(crc32c(data)).toBe(kafkajsCrc32c(Buffer.from(data)));
      }),
    );
  });
});
