// The storage ports: interfaces, conditions and typed errors. Adapters have their own subpath
// exports (`@sluice/storage/memory`, `/sqlite`, `/filesystem`, `/dynamodb`, `/s3`), so a bundle
// carries only the backends it uses: the Lambda no SQLite, the local server no AWS SDK.
export * from "./metadata-store/condition.js";
export * from "./metadata-store/errors.js";
export type * from "./metadata-store/port.js";
export { ITEM_BYTES_MAX, TRANSACTION_OPERATIONS_MAX } from "./metadata-store/port.js";
export { MeteredMetadataStore, MeteredObjectStore, type StorageBackend } from "./metered.js";
export type * from "./object-store/port.js";
export { OBJECT_KEY_BYTES_MAX } from "./object-store/port.js";
