import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { awsClientConfig, uniqueName } from "@sluice/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runObjectStoreContract } from "./object-store.contract.js";
import type { ObjectStore } from "./port.js";
import { createBucketIfMissing, deleteBucketAndContents, S3ObjectStore } from "./s3.js";

const client = new S3Client(awsClientConfig());
// One bucket per binding: the unprefixed binding empties its bucket after every case.
const bucket = uniqueName("object-store");
const prefixedBucket = uniqueName("object-store-prefix");
let prefixes = 0;

beforeAll(async () => {
  await createBucketIfMissing(client, bucket);
  await createBucketIfMissing(client, prefixedBucket);
});

afterAll(async () => {
  await deleteBucketAndContents(client, bucket);
  await deleteBucketAndContents(client, prefixedBucket);
  client.destroy();
});

runObjectStoreContract({
  name: "s3",
  create: async () => {
    const store = new S3ObjectStore({ client, bucket });
    return { store, cleanup: () => deleteEverything(store) };
  },
});

runObjectStoreContract({
  name: "s3 with key prefix",
  create: async () => {
    const store = new S3ObjectStore({ client, bucket: prefixedBucket, prefix: `case-${++prefixes}/` });
    return { store, cleanup: () => deleteEverything(store) };
  },
  skip: [
    {
      reason: "the store's key prefix takes part of S3's 1024-byte key limit",
      tests: ["accepts a key of exactly 1024 UTF-8 bytes"],
    },
  ],
});

describe("S3ObjectStore", () => {
  it("stores keys under its prefix and lists only those, without the prefix", async () => {
    const prefix = `isolated-${++prefixes}/`;
    const store = new S3ObjectStore({ client, bucket: prefixedBucket, prefix });
    await store.put("a", new TextEncoder().encode("inside"));
    await client.send(
      new PutObjectCommand({ Bucket: prefixedBucket, Key: `${prefix.slice(0, -1)}-sibling`, Body: "x" }),
    );
    const raw = await client.send(new GetObjectCommand({ Bucket: prefixedBucket, Key: `${prefix}a` }));
    expect(await raw.Body?.transformToString()).toBe("inside");
    expect((await store.list("")).objects.map((object) => object.key)).toEqual(["a"]);
  });

  it("createBucketIfMissing accepts a bucket that exists", async () => {
    await expect(createBucketIfMissing(client, bucket)).resolves.toBeUndefined();
  });

  it("deleteBucketAndContents accepts a bucket that does not exist", async () => {
    await expect(deleteBucketAndContents(client, uniqueName("never-created"))).resolves.toBeUndefined();
  });
});

async function deleteEverything(store: ObjectStore): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await store.list("", cursor === undefined ? {} : { cursor });
    await store.deleteMany(page.objects.map((object) => object.key));
    cursor = page.cursor;
  } while (cursor !== undefined);
}
