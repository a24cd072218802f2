import { MemoryMetadataStore } from "./memory.js";
import { runMetadataStoreContract } from "./metadata-store.contract.js";

runMetadataStoreContract({ name: "memory", create: async () => ({ store: new MemoryMetadataStore() }) });
