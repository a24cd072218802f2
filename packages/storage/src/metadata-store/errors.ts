import { ConflictError, type SluiceErrorOptions } from "@sluice/core";
import type { Item } from "./port.js";

/** A single-item write whose condition did not hold. `current` is the item as it is now. */
export class ConditionFailedError extends ConflictError {
  override readonly name = "ConditionFailedError";
  readonly current: Item | undefined;

  constructor(message: string, current: Item | undefined, options: SluiceErrorOptions = {}) {
    super(message, options);
    this.current = current;
  }
}

export interface TransactionFailure {
  /** Index of the operation in the `transactWrite` call. */
  index: number;
  /** That item's current value (undefined when it does not exist). */
  current: Item | undefined;
}

/** A transaction that changed nothing because one or more conditions failed. */
export class TransactionCanceledError extends ConflictError {
  override readonly name = "TransactionCanceledError";
  readonly failures: TransactionFailure[];

  constructor(message: string, failures: TransactionFailure[], options: SluiceErrorOptions = {}) {
    super(message, options);
    this.failures = failures;
  }
}
