import { ConflictError, InvalidArgumentError, type SluiceErrorOptions } from "@sluice/core";

/** A record larger than the topic's max.message.bytes (HTTP 413). */
export class RecordTooLargeError extends InvalidArgumentError {
  override readonly name: string = "RecordTooLargeError";
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super(message, { code: "RECORD_TOO_LARGE", ...options });
  }
}

/** An offset outside [logStartOffset, highWatermark] (HTTP 416, Kafka's OFFSET_OUT_OF_RANGE). */
export class OffsetOutOfRangeError extends InvalidArgumentError {
  override readonly name: string = "OffsetOutOfRangeError";
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super(message, { code: "OFFSET_OUT_OF_RANGE", ...options });
  }
}

/** A producer sequence that skips ahead, or a new epoch not starting at 0 (Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER). */
export class OutOfOrderSequenceError extends ConflictError {
  override readonly name: string = "OutOfOrderSequenceError";
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super(message, { code: "OUT_OF_ORDER_SEQUENCE", ...options });
  }
}

/**
 * A transactional append whose operations would not fit one metadata transaction (100): too many
 * output partitions together with the caller's own operations. Nothing was written; split it.
 */
export class TransactionTooLargeError extends InvalidArgumentError {
  override readonly name: string = "TransactionTooLargeError";
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super(message, { code: "TRANSACTION_TOO_LARGE", ...options });
  }
}
