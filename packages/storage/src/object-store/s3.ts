import {
  type BucketLocationConstraint,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { InternalError, InvalidArgumentError, NotFoundError } from "@sluice/core";
import type {
  ByteRange,
  GetOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoredObject,
} from "./port.js";
import { OBJECT_KEY_BYTES_MAX } from "./port.js";
import {
  asPlainBytes,
  checkCondition,
  checkKey,
  checkKeys,
  checkPrefix,
  checkRange,
  isWellFormed,
  listLimit,
  selectRange,
  utf8Length,
} from "./rules.js";
import { type S3CallContext, toSluiceError } from "./s3-errors.js";

/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH_MAX = 1000;

export interface S3ObjectStoreOptions {
  client: S3Client;
  bucket: string;
  /** Prepended to every key and stripped from listed keys; it counts towards S3's 1024-byte key limit. */
  prefix?: string;
}

/**
 * ObjectStore on S3 (or anything speaking its API). The port's guarantees are S3's own: strong
 * read-after-write, conditional PutObject (If-None-Match / If-Match), byte-ordered listing. This
 * class checks inputs with the same rules as the other adapters, and maps errors at the boundary.
 *
 * A conditional put whose first attempt timed out after S3 stored it is retried by the SDK and then
 * answered 412: the caller sees ConflictError although its bytes won. Callers that must know can
 * compare the stored object with what they wrote.
 */
export class S3ObjectStore implements ObjectStore {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;

  constructor(options: S3ObjectStoreOptions) {
    const prefix = options.prefix ?? "";
    if (!isWellFormed(prefix) || prefix.startsWith("/") || utf8Length(prefix) >= OBJECT_KEY_BYTES_MAX) {
      throw new InvalidArgumentError(
        "S3 key prefix must be well-formed, not start with '/', and leave room for keys",
        {
          details: { prefix },
        },
      );
    }
    this.#client = options.client;
    this.#bucket = options.bucket;
    this.#prefix = prefix;
  }

  async get(key: string, options?: GetOptions): Promise<StoredObject> {
    const range = options?.range;
    if (range) checkRange(range);
    const Key = this.#fullKey(key);
    return call({ operation: "get", key }, async () => {
      const Range = range ? `bytes=${range.offset}-${range.offset + range.length - 1}` : undefined;
      const output = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key, Range }));
      const bytes = asPlainBytes((await output.Body?.transformToByteArray()) ?? new Uint8Array(0));
      const { body, size } = rangedBody(bytes, output, range);
      return {
        key,
        etag: required(output.ETag, "ETag"),
        size,
        lastModified: required(output.LastModified, "LastModified"),
        body,
      };
    });
  }

  async head(key: string): Promise<ObjectInfo> {
    const Key = this.#fullKey(key);
    return call({ operation: "head", key }, async () => {
      const output = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key }));
      return {
        key,
        etag: required(output.ETag, "ETag"),
        size: required(output.ContentLength, "ContentLength"),
        lastModified: required(output.LastModified, "LastModified"),
      };
    });
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    const Key = this.#fullKey(key);
    const condition = options?.condition;
    checkCondition(condition);
    const ifNoneMatch = condition && "ifNoneMatch" in condition ? condition.ifNoneMatch : undefined;
    const ifMatch = condition && "ifMatch" in condition ? condition.ifMatch : undefined;
    const context: S3CallContext = {
      operation: "put",
      key,
      condition: ifNoneMatch ? "ifNoneMatch" : ifMatch ? "ifMatch" : undefined,
    };
    return call(context, async () => {
      const output = await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key,
          Body: body,
          IfNoneMatch: ifNoneMatch,
          IfMatch: ifMatch,
        }),
      );
      // PutObject does not return LastModified; the local clock stands in for it (within clock skew).
      // Asking HeadObject would cost a round trip and could describe a later writer's object.
      return { key, etag: required(output.ETag, "ETag"), size: body.byteLength, lastModified: new Date() };
    });
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    checkPrefix(prefix);
    const limit = listLimit(options);
    return call({ operation: "list", details: { prefix } }, async () => {
      const output = await this.#client.send(
        new ListObjectsV2Command({
          Bucket: this.#bucket,
          Prefix: this.#prefix + prefix || undefined,
          MaxKeys: limit,
          ContinuationToken: options?.cursor,
          // XML cannot carry every character a key may hold (a CR comes back as LF), so ask S3 to
          // URL-encode keys. An endpoint that ignores the request says so by omitting EncodingType.
          EncodingType: "url",
        }),
      );
      const encoded = output.EncodingType === "url";
      const objects = (output.Contents ?? []).map((entry) => this.#listedInfo(entry, encoded));
      if (!output.IsTruncated) return { objects };
      return { objects, cursor: required(output.NextContinuationToken, "NextContinuationToken") };
    });
  }

  async delete(key: string): Promise<void> {
    const Key = this.#fullKey(key);
    try {
      await call({ operation: "delete", key }, () =>
        this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key })),
      );
    } catch (error) {
      // S3 answers 204 for a missing key; an endpoint answering 404 means the same thing.
      if (!(error instanceof NotFoundError)) throw error;
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    // Validate all first, so a bad key in the batch deletes nothing.
    checkKeys(keys);
    const fullKeys = [...new Set(keys)].map((key) => this.#fullKey(key));
    const batchable = fullKeys.filter(isXmlSafe);
    for (let i = 0; i < batchable.length; i += DELETE_BATCH_MAX) {
      await deleteBatch(this.#client, this.#bucket, batchable.slice(i, i + DELETE_BATCH_MAX));
    }
    // DeleteObjects names keys in an XML body, which cannot hold most control characters even
    // escaped (the request fails as MalformedXML); such keys go one by one in the URL instead.
    for (const Key of fullKeys.filter((key) => !isXmlSafe(key))) {
      await call({ operation: "deleteMany", key: Key }, () =>
        this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key })),
      );
    }
  }

  #fullKey(key: string): string {
    checkKey(key);
    const full = this.#prefix + key;
    const bytes = utf8Length(full);
    if (bytes > OBJECT_KEY_BYTES_MAX) {
      throw new InvalidArgumentError(
        `key with the store's prefix is ${bytes} UTF-8 bytes; S3 allows ${OBJECT_KEY_BYTES_MAX}`,
        { details: { key, prefix: this.#prefix } },
      );
    }
    return full;
  }

  #listedInfo(
    entry: { Key?: string; ETag?: string; Size?: number; LastModified?: Date },
    encoded: boolean,
  ): ObjectInfo {
    const raw = required(entry.Key, "Key");
    const full = encoded ? decodeListedKey(raw) : raw;
    if (!full.startsWith(this.#prefix)) {
      throw new InternalError("S3 listed a key outside the store's prefix", { details: { key: full } });
    }
    return {
      key: full.slice(this.#prefix.length),
      etag: required(entry.ETag, "ETag"),
      size: required(entry.Size, "Size"),
      lastModified: required(entry.LastModified, "LastModified"),
    };
  }
}

/**
 * The body and whole-object size of a GetObject answer. A ranged answer (206) names the total in
 * Content-Range. An endpoint may ignore the Range header and send the whole object (200); then
 * the range is applied here, with the same rules.
 */
function rangedBody(
  bytes: Uint8Array,
  output: GetObjectCommandOutput,
  range: ByteRange | undefined,
): { body: Uint8Array; size: number } {
  const total = totalFromContentRange(output.ContentRange);
  if (total !== undefined) return { body: bytes, size: total };
  if (!range) return { body: bytes, size: bytes.byteLength };
  const { start, end } = selectRange(bytes.byteLength, range);
  return { body: bytes.slice(start, end), size: bytes.byteLength };
}

function totalFromContentRange(contentRange: string | undefined): number | undefined {
  if (contentRange === undefined) return undefined;
  const match = /^bytes \d+-\d+\/(\d+)$/.exec(contentRange.trim());
  if (!match) throw new InternalError("S3 sent an unreadable Content-Range", { details: { contentRange } });
  return Number(match[1]);
}

/** Whether XML 1.0 can carry `key`: tab, LF and CR (escaped) are its only characters below U+0020. */
function isXmlSafe(key: string): boolean {
  for (const char of key) {
    const code = char.codePointAt(0)!;
    if (code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) return false;
    if (code === 0xfffe || code === 0xffff) return false;
  }
  return true;
}

/** S3's `encoding-type=url` is form encoding: "+" is a space and "%2B" a plus. */
function decodeListedKey(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replaceAll("+", " "));
  } catch (error) {
    throw new InternalError("S3 listed a key that is not valid URL encoding", {
      cause: error,
      details: { encoded },
    });
  }
}

async function deleteBatch(client: S3Client, bucket: string, fullKeys: string[]): Promise<void> {
  if (fullKeys.length === 0) return;
  const output = await call({ operation: "deleteMany", details: { keys: fullKeys.length } }, () =>
    client.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: fullKeys.map((Key) => ({ Key })), Quiet: true },
      }),
    ),
  );
  // DeleteObjects answers 200 and lists per-key failures; a missing key is not a failure.
  const failure = (output.Errors ?? []).find((entry) => entry.Code !== "NoSuchKey");
  if (failure) {
    const error = Object.assign(new Error(failure.Message ?? "DeleteObjects failed for a key"), {
      name: failure.Code ?? "Unknown",
    });
    throw toSluiceError(error, { operation: "deleteMany", key: failure.Key });
  }
}

async function call<T>(context: S3CallContext, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toSluiceError(error, context);
  }
}

function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw new InternalError(`S3 answer lacks ${field}`, { details: { field } });
  return value;
}

/** Creates `bucket` unless it exists (for tests and local setup). */
export async function createBucketIfMissing(client: S3Client, bucket: string): Promise<void> {
  if (await bucketExists(client, bucket)) return;
  const region = await client.config.region();
  // us-east-1 is S3's default location and rejects being named explicitly.
  const configuration =
    region === "us-east-1" ? undefined : { LocationConstraint: region as BucketLocationConstraint };
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: configuration }));
  } catch (error) {
    // Lost a race with another creator of our own bucket: it exists, which is all we wanted.
    if ((error as { name?: unknown }).name === "BucketAlreadyOwnedByYou") return;
    throw toSluiceError(error, { operation: "bucket", details: { bucket } });
  }
}

/** Deletes every object in `bucket`, then the bucket; a missing bucket is fine (for tests). */
export async function deleteBucketAndContents(client: S3Client, bucket: string): Promise<void> {
  if (!(await bucketExists(client, bucket))) return;
  const store = new S3ObjectStore({ client, bucket });
  let cursor: string | undefined;
  do {
    const page = await store.list("", cursor === undefined ? {} : { cursor });
    await store.deleteMany(page.objects.map((object) => object.key));
    cursor = page.cursor;
  } while (cursor !== undefined);
  await call({ operation: "bucket", details: { bucket } }, () =>
    client.send(new DeleteBucketCommand({ Bucket: bucket })),
  );
}

async function bucketExists(client: S3Client, bucket: string): Promise<boolean> {
  try {
    await call({ operation: "bucket", details: { bucket } }, () =>
      client.send(new HeadBucketCommand({ Bucket: bucket })),
    );
    return true;
  } catch (error) {
    // HeadBucket has no body, so a missing bucket arrives as a bare 404 "NotFound".
    if (error instanceof NotFoundError) return false;
    throw error;
  }
}
