import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FilesystemObjectStore } from "@sluice/storage/filesystem";
import { SqliteMetadataStore } from "@sluice/storage/sqlite";
import { runEngineScenarios } from "./engine.scenarios.js";

runEngineScenarios({
  name: "sqlite + filesystem",
  runs: 15,
  create: async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-engine-"));
    const metadata = new SqliteMetadataStore({ path: join(dir, "metadata.sqlite") });
    return {
      objects: new FilesystemObjectStore({ root: join(dir, "objects") }),
      metadata,
      cleanup: async () => {
        metadata.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
});
