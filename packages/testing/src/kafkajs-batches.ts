/**
 * Record batches exactly as a Kafka client encodes them: kafkajs's own Produce request encoder
 * (v3, the first with RecordBatch v2) builds the request, and the record sets are cut out of it.
 * kafkajs implements gzip itself; snappy, lz4 and zstd are registered into its codec table from
 * @sluice/core (kafkajs leaves those to plugins), so for them the framing is kafkajs's and the
 * payload ours.
 */
import { createRequire } from "node:module";
import { type Compression, compress, decompress } from "@sluice/core";

const require = createRequire(import.meta.url);

interface KafkajsEncoder {
  buffer: Buffer;
}
interface KafkajsCodec {
  compress(encoder: KafkajsEncoder): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

const produceRequestV3 = require("kafkajs/src/protocol/requests/produce/v3/request") as (args: {
  acks: number;
  timeout: number;
  producerId?: bigint;
  producerEpoch?: number;
  compression?: number;
  topicData: {
    topic: string;
    partitions: { partition: number; firstSequence?: number; messages: KafkajsMessage[] }[];
  }[];
}) => { encode(): Promise<KafkajsEncoder> };
const { Codecs: kafkajsCodecs } = require("kafkajs/src/protocol/message/compression") as {
  Codecs: { [code: number]: () => KafkajsCodec };
};

const CODES: { [C in Compression]: number } = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 };

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

for (const compression of ["snappy", "lz4", "zstd"] as const) {
  kafkajsCodecs[CODES[compression]] = () => ({
    compress: async (encoder) => asBuffer(await compress(compression, encoder.buffer)),
    decompress: async (buffer) => asBuffer(await decompress(compression, buffer)),
  });
}

/** A message as kafkajs's producer takes it. */
export interface KafkajsMessage {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: { [name: string]: Buffer | string };
  /** Milliseconds, as a string or number; default: when encoded. */
  timestamp?: number | string;
}

export interface KafkajsBatchOptions {
  compression?: Compression;
  /** An idempotent producer's id and epoch; default none (-1, with kafkajs's epoch 0). */
  producerId?: number;
  producerEpoch?: number;
}

/**
 * One RecordBatch per partition, as kafkajs's producer sends them in one Produce request, in the
 * order given. `firstSequence` per partition is the idempotent producer's base sequence.
 */
export async function kafkajsBatches(
  partitions: { partition: number; messages: KafkajsMessage[]; firstSequence?: number }[],
  options: KafkajsBatchOptions = {},
): Promise<Uint8Array[]> {
  const request = produceRequestV3({
    acks: -1,
    timeout: 30_000,
    ...(options.producerId === undefined ? {} : { producerId: BigInt(options.producerId) }),
    ...(options.producerEpoch === undefined ? {} : { producerEpoch: options.producerEpoch }),
    compression: CODES[options.compression ?? "none"],
    topicData: [{ topic: "t", partitions }],
  });
  return recordSetsOf((await request.encode()).buffer);
}

/** One batch of one partition, as kafkajs encodes it. */
export async function kafkajsBatch(
  messages: KafkajsMessage[],
  options: KafkajsBatchOptions & { firstSequence?: number } = {},
): Promise<Uint8Array> {
  const [batch] = await kafkajsBatches(
    [
      {
        partition: 0,
        messages,
        ...(options.firstSequence === undefined ? {} : { firstSequence: options.firstSequence }),
      },
    ],
    options,
  );
  return batch!;
}

/**
 * The record sets of a Produce request v3 body: transactional_id (nullable string), acks int16,
 * timeout int32, then [topic string, [partition int32, record_set bytes (int32 length)]].
 */
function recordSetsOf(request: Buffer): Uint8Array[] {
  let position = 0;
  const int16 = () => {
    const value = request.readInt16BE(position);
    position += 2;
    return value;
  };
  const int32 = () => {
    const value = request.readInt32BE(position);
    position += 4;
    return value;
  };
  const transactionalIdLength = int16();
  if (transactionalIdLength > 0) position += transactionalIdLength;
  int16(); // acks
  int32(); // timeout
  const sets: Uint8Array[] = [];
  for (let topics = int32(); topics > 0; topics--) {
    const nameLength = int16();
    position += nameLength; // topic name
    for (let partitions = int32(); partitions > 0; partitions--) {
      int32(); // partition
      const size = int32();
      sets.push(new Uint8Array(request.subarray(position, position + size)));
      position += size;
    }
  }
  return sets;
}
