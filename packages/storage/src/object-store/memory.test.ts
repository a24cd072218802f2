import { MemoryObjectStore } from "./memory.js";
import { runObjectStoreContract } from "./object-store.contract.js";

runObjectStoreContract({ name: "memory", create: async () => ({ store: new MemoryObjectStore() }) });
