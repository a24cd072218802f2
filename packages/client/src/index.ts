export type { PartitionActivity, TopicActivity } from "./activity.js";
export {
  type AppendedBatchReport,
  type FetchFunction,
  RECORD_BATCH_MEDIA_TYPE,
  SluiceClient,
  type SluiceClientOptions,
} from "./client.js";
export type { ConsumerClock } from "./clock.js";
export {
  type Data,
  type DataInput,
  type DataType,
  dataBytes,
  dataFromBytes,
  dataText,
  fromBase64,
  type Header,
  type HeaderInput,
  headerText,
  toBase64,
} from "./data.js";
export { parseErrorBody, SluiceConnectionError, SluiceHttpError } from "./errors.js";
export {
  GroupConsumer,
  type GroupConsumerBatch,
  type GroupConsumerOptions,
  type PartitionsListener,
} from "./group-consumer.js";
export { parseConcatenatedJson } from "./json-stream.js";
export type * from "./processor-types.js";
export {
  type DeliveryCallback,
  DeliveryUnknownError,
  Producer,
  ProducerClosedError,
  type ProducerOptions,
  type ProducerRecord,
  type ProduceTicket,
  type RecordMetadata,
} from "./producer.js";
export {
  QueueAcknowledgementError,
  QueueConsumer,
  type QueueConsumerOptions,
  QueueRecord,
} from "./queue-consumer.js";
export type * from "./queue-types.js";
export { parseServerSentEvents, type ServerSentEvent } from "./sse.js";
export type * from "./types.js";
