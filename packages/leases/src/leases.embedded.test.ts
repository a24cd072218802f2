import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteMetadataStore } from "@sluice/storage/sqlite";
import { runLeaseScenarios } from "./leases.scenarios.js";

runLeaseScenarios({
  name: "sqlite",
  runs: 25,
  create: async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-leases-"));
    const metadata = new SqliteMetadataStore({ path: join(dir, "metadata.sqlite") });
    return {
      metadata,
      cleanup: async () => {
        metadata.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
});
