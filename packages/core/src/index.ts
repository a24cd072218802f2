export * from "./clock.js";
export * from "./compression.js";
export * from "./crc32c.js";
export * from "./errors.js";
export * from "./murmur2.js";
export * from "./partitioner.js";
export * from "./record-batch.js";
export * from "./varint.js";
