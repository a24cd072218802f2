import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FilesystemObjectStore } from "@sluice/storage/filesystem";
import { SqliteMetadataStore } from "@sluice/storage/sqlite";
import { runMaintenanceScenarios } from "./maintenance.scenarios.js";

// The one-file-per-object store (SLUICE_OBJECT_STORE=files, and data directories made before the
// packed store), which the local server still runs on.
runMaintenanceScenarios({
  name: "sqlite + a file per object",
  runs: 6,
  create: async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-maintenance-files-"));
    const metadata = new SqliteMetadataStore({ path: join(dir, "metadata.sqlite") });
    return {
      objects: new FilesystemObjectStore({ root: join(dir, "objects"), durability: "buffered" }),
      metadata,
      cleanup: async () => {
        metadata.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
});
