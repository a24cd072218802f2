import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FilesystemObjectStore } from "@sluice/storage/filesystem";
import { SqliteMetadataStore } from "@sluice/storage/sqlite";
import { runGroupScenarios } from "./groups.scenarios.js";

runGroupScenarios({
  name: "sqlite + filesystem",
  runs: 12,
  create: async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-groups-"));
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
