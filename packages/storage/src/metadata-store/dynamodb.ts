import {
  type CancellationReason,
  CreateTableCommand,
  DeleteItemCommand,
  DeleteTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  waitUntilTableNotExists,
} from "@aws-sdk/client-dynamodb";
import {
  ConflictError,
  InternalError,
  InvalidArgumentError,
  isSluiceError,
  NotFoundError,
  type SluiceError,
  UnavailableError,
} from "@sluice/core";
import { type DynamoItem, marshallItem, marshallKey, unmarshallItem } from "./dynamodb-codec.js";
import {
  compileCondition,
  compileKeyCondition,
  compileUpdate,
  ExpressionBuilder,
} from "./dynamodb-expressions.js";
import { ConditionFailedError, TransactionCanceledError, type TransactionFailure } from "./errors.js";
import { decodeCursor, encodeCursor } from "./paging.js";
import type {
  Condition,
  Item,
  ItemKey,
  MetadataStore,
  Query,
  QueryPage,
  TransactOperation,
  UpdateChanges,
  WriteOptions,
} from "./port.js";
import {
  type CheckedOperation,
  checkChanges,
  checkCondition,
  checkItem,
  checkKey,
  checkOperation,
  checkQuery,
  checkTransaction,
} from "./validate.js";

export interface DynamoDbMetadataStoreOptions {
  client: DynamoDBClient;
  /** A table with `pk` (S, HASH) and `sk` (S, RANGE), as createMetadataTable makes it. */
  tableName: string;
}

/**
 * MetadataStore on one DynamoDB table. Reads are strongly consistent (ConsistentRead); writes are
 * conditional DynamoDB writes and TransactWriteItems, which give the per-item atomicity and the
 * all-or-nothing transactions the port promises. Failed conditions carry the current item because
 * every conditional write asks for ReturnValuesOnConditionCheckFailure=ALL_OLD. Inputs are
 * validated client-side with the same rules as the other adapters, so errors match everywhere.
 */
export class DynamoDbMetadataStore implements MetadataStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;

  constructor(options: DynamoDbMetadataStoreOptions) {
    this.#client = options.client;
    this.#table = options.tableName;
  }

  async get(key: ItemKey): Promise<Item | undefined> {
    const checkedKey = checkKey(key);
    const output = await this.#send("GetItem", checkedKey, () =>
      this.#client.send(
        new GetItemCommand({ TableName: this.#table, Key: marshallKey(checkedKey), ConsistentRead: true }),
      ),
    );
    return output.Item ? unmarshallItem(output.Item) : undefined;
  }

  async put(item: Item, options: WriteOptions = {}): Promise<void> {
    const checkedItem = checkItem(item);
    const builder = new ExpressionBuilder();
    const condition = conditionParameters(options.condition, builder);
    await this.#send("PutItem", { pk: checkedItem.pk, sk: checkedItem.sk }, () =>
      this.#client.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: marshallItem(checkedItem),
          ...condition,
          ...builder.parameters(),
        }),
      ),
    );
  }

  async update(key: ItemKey, changes: UpdateChanges, options: WriteOptions = {}): Promise<Item> {
    const checkedKey = checkKey(key);
    const checkedChanges = checkChanges(changes);
    const builder = new ExpressionBuilder();
    const updateExpression = compileUpdate(checkedChanges, builder);
    const condition = conditionParameters(options.condition, builder);
    const output = await this.#send("UpdateItem", checkedKey, () =>
      this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: marshallKey(checkedKey),
          UpdateExpression: updateExpression,
          ReturnValues: "ALL_NEW",
          ...condition,
          ...builder.parameters(),
        }),
      ),
    );
    if (!output.Attributes) throw new InternalError("DynamoDB UpdateItem returned no attributes for ALL_NEW");
    return unmarshallItem(output.Attributes);
  }

  async delete(key: ItemKey, options: WriteOptions = {}): Promise<void> {
    const checkedKey = checkKey(key);
    const builder = new ExpressionBuilder();
    const condition = conditionParameters(options.condition, builder);
    await this.#send("DeleteItem", checkedKey, () =>
      this.#client.send(
        new DeleteItemCommand({
          TableName: this.#table,
          Key: marshallKey(checkedKey),
          ...condition,
          ...builder.parameters(),
        }),
      ),
    );
  }

  async query(query: Query): Promise<QueryPage> {
    checkQuery(query);
    const start = query.cursor === undefined ? undefined : decodeCursor(query.cursor, query.pk);
    const builder = new ExpressionBuilder();
    const keyCondition = compileKeyCondition(query.pk, query.sk, builder);
    const output = await this.#send("Query", { pk: query.pk }, () =>
      this.#client.send(
        new QueryCommand({
          TableName: this.#table,
          KeyConditionExpression: keyCondition,
          ConsistentRead: true,
          ScanIndexForward: query.order !== "desc",
          ...(query.limit === undefined ? {} : { Limit: query.limit }),
          ...(start === undefined ? {} : { ExclusiveStartKey: marshallKey(start) }),
          ...builder.parameters(),
        }),
      ),
    );
    const items = (output.Items ?? []).map(unmarshallItem);
    const last = output.LastEvaluatedKey;
    if (!last) return { items };
    const lastKey = unmarshallItem(last);
    return { items, cursor: encodeCursor({ pk: lastKey.pk, sk: lastKey.sk }) };
  }

  async transactWrite(operations: readonly TransactOperation[]): Promise<void> {
    checkTransaction(operations);
    // DynamoDB refuses an empty TransactItems list; for the port an empty transaction is a no-op.
    if (operations.length === 0) return;
    const transactItems = operations.map((operation) => this.#transactItem(checkOperation(operation)));
    try {
      await this.#client.send(new TransactWriteItemsCommand({ TransactItems: transactItems }));
    } catch (error) {
      throw this.#transactionError(error);
    }
  }

  #transactItem(operation: CheckedOperation): TransactWriteItem {
    const builder = new ExpressionBuilder();
    const common = { TableName: this.#table };
    switch (operation.kind) {
      case "put": {
        const condition = conditionParameters(operation.condition, builder);
        return {
          Put: { ...common, Item: marshallItem(operation.item), ...condition, ...builder.parameters() },
        };
      }
      case "update": {
        const updateExpression = compileUpdate(operation.changes, builder);
        const condition = conditionParameters(operation.condition, builder);
        return {
          Update: {
            ...common,
            Key: marshallKey(operation.key),
            UpdateExpression: updateExpression,
            ...condition,
            ...builder.parameters(),
          },
        };
      }
      case "delete": {
        const condition = conditionParameters(operation.condition, builder);
        return {
          Delete: { ...common, Key: marshallKey(operation.key), ...condition, ...builder.parameters() },
        };
      }
      case "condition_check": {
        const condition = conditionParameters(operation.condition, builder);
        return {
          ConditionCheck: {
            ...common,
            Key: marshallKey(operation.key),
            ConditionExpression: condition.ConditionExpression ?? "",
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
            ...builder.parameters(),
          },
        };
      }
    }
  }

  /** Sends one single-item request, translating a failed condition and backend errors. */
  async #send<T>(operation: string, key: Partial<ItemKey>, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      if (errorName(error) === "ConditionalCheckFailedException") {
        const item = (error as { Item?: DynamoItem }).Item;
        throw new ConditionFailedError(
          "the condition did not hold",
          item ? unmarshallItem(item) : undefined,
          {
            cause: error,
            details: { table: this.#table, operation, ...key },
          },
        );
      }
      throw translateDynamoError(error, { table: this.#table, operation, ...key });
    }
  }

  /**
   * Reads TransactionCanceledException's per-operation reasons: failed conditions become
   * TransactionCanceledError; otherwise a ValidationError is the caller's fault, and conflicts
   * with other transactions or throttling are transient.
   */
  #transactionError(error: unknown): Error {
    const details = { table: this.#table, operation: "TransactWriteItems" };
    if (errorName(error) !== "TransactionCanceledException") return translateDynamoError(error, details);
    const reasons: CancellationReason[] =
      (error as { CancellationReasons?: CancellationReason[] }).CancellationReasons ?? [];
    const codes = reasons.map((reason) => reason.Code ?? "None");
    const failures: TransactionFailure[] = [];
    reasons.forEach((reason, index) => {
      if (reason.Code === "ConditionalCheckFailed") {
        failures.push({ index, current: reason.Item ? unmarshallItem(reason.Item) : undefined });
      }
    });
    const options = { cause: error, details: { ...details, reasons: codes } };
    if (failures.length > 0) {
      return new TransactionCanceledError(
        `transaction canceled: ${failures.length} condition(s) failed`,
        failures,
        options,
      );
    }
    const message = `transaction canceled: ${codes.join(", ")}`;
    if (codes.includes("ValidationError")) {
      const why = reasons.find((reason) => reason.Code === "ValidationError")?.Message ?? "";
      return new InvalidArgumentError(`${message}: ${why}`, options);
    }
    if (codes.some((code) => TRANSIENT_CANCELLATION_CODES.has(code)))
      return new UnavailableError(message, options);
    return new InternalError(message, options);
  }
}

const TRANSIENT_CANCELLATION_CODES = new Set([
  "TransactionConflict",
  "ThrottlingError",
  "ProvisionedThroughputExceeded",
  "RequestLimitExceeded",
]);

/**
 * ConditionExpression plus ReturnValuesOnConditionCheckFailure=ALL_OLD, so a failure comes back
 * with the item as it is (DynamoDB returns nothing for a missing item: current is then undefined).
 */
function conditionParameters(
  condition: Condition | undefined,
  builder: ExpressionBuilder,
): { ConditionExpression?: string; ReturnValuesOnConditionCheckFailure?: "ALL_OLD" } {
  if (condition === undefined) return {};
  checkCondition(condition);
  return {
    ConditionExpression: compileCondition(condition, builder),
    ReturnValuesOnConditionCheckFailure: "ALL_OLD",
  };
}

const UNAVAILABLE_ERROR_NAMES = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "TransactionConflictException",
  "TransactionInProgressException",
  "ReplicatedWriteConflictException",
  "InternalServerError",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "LimitExceededException",
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
]);

const NETWORK_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

/** Maps a DynamoDB/SDK error to the typed set, always keeping the original as `cause`. */
function translateDynamoError(error: unknown, details: Record<string, unknown>): SluiceError {
  if (isSluiceError(error)) return error;
  const name = errorName(error);
  const message = error instanceof Error ? error.message : String(error);
  const options = { cause: error, details: { ...details, awsError: name } };
  const table = typeof details.table === "string" ? details.table : "(unknown)";
  if (name === "ValidationException" || name === "ItemCollectionSizeLimitExceededException") {
    return new InvalidArgumentError(`DynamoDB rejected the request: ${message}`, options);
  }
  if (name === "ResourceNotFoundException") {
    return new NotFoundError(
      `DynamoDB table ${table} does not exist (or is not active): ${message}`,
      options,
    );
  }
  if (name === "ResourceInUseException") {
    return new ConflictError(`DynamoDB table ${table} is in use: ${message}`, options);
  }
  if (isTransient(error, name)) return new UnavailableError(`DynamoDB is unavailable: ${message}`, options);
  return new InternalError(`DynamoDB request failed: ${message}`, options);
}

function isTransient(error: unknown, name: string | undefined): boolean {
  if (name !== undefined && UNAVAILABLE_ERROR_NAMES.has(name)) return true;
  if (typeof error !== "object" || error === null) return false;
  const candidate = error as {
    code?: unknown;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  if (typeof candidate.code === "string" && NETWORK_ERROR_CODES.has(candidate.code)) return true;
  const status = candidate.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return true;
  return candidate.$retryable !== undefined && candidate.$retryable !== null;
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

/** The attribute DynamoDB TTL deletes expired items by (epoch seconds). */
export const METADATA_TTL_ATTRIBUTE = "expiresAt";

/**
 * Creates the metadata table (pk S HASH, sk S RANGE, on-demand) and waits until it is ACTIVE. An
 * existing table is accepted as is. TTL on `expiresAt` is enabled best-effort: it only saves
 * storage (nothing relies on expiry for correctness), so a backend refusing it is not an error.
 */
export async function createMetadataTable(client: DynamoDBClient, tableName: string): Promise<void> {
  const details = { table: tableName, operation: "CreateTable" };
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        AttributeDefinitions: [
          { AttributeName: "pk", AttributeType: "S" },
          { AttributeName: "sk", AttributeType: "S" },
        ],
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
  } catch (error) {
    if (errorName(error) !== "ResourceInUseException") throw translateDynamoError(error, details);
  }
  await waitFor(
    () =>
      waitUntilTableExists({ client, maxWaitTime: 300, minDelay: 1, maxDelay: 5 }, { TableName: tableName }),
    details,
  );
  await enableTimeToLive(client, tableName);
}

async function enableTimeToLive(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: METADATA_TTL_ATTRIBUTE, Enabled: true },
      }),
    );
  } catch {
    // Best-effort (see createMetadataTable): already enabled, or a backend without TTL.
  }
}

/** Deletes the table and waits until it is gone; a missing table is fine. */
export async function deleteMetadataTable(client: DynamoDBClient, tableName: string): Promise<void> {
  const details = { table: tableName, operation: "DeleteTable" };
  try {
    await client.send(new DeleteTableCommand({ TableName: tableName }));
  } catch (error) {
    if (errorName(error) === "ResourceNotFoundException") return;
    throw translateDynamoError(error, details);
  }
  await waitFor(
    () =>
      waitUntilTableNotExists(
        { client, maxWaitTime: 300, minDelay: 1, maxDelay: 5 },
        { TableName: tableName },
      ),
    details,
  );
}

async function waitFor(wait: () => Promise<unknown>, details: Record<string, unknown>): Promise<void> {
  try {
    await wait();
  } catch (error) {
    throw new UnavailableError(`DynamoDB table ${String(details.table)} did not reach the expected state`, {
      cause: error,
      details,
    });
  }
}
