import { MaintenanceRunner } from "@sluice/maintenance";
import { describe, expect, it } from "vitest";
import { createMaintenanceRunner, summarise } from "./maintenance.js";

describe("the maintenance function", () => {
  it("names every missing variable", () => {
    expect(() => createMaintenanceRunner({})).toThrow(
      /^missing environment variables SLUICE_BUCKET, SLUICE_TABLE: /,
    );
    expect(() => createMaintenanceRunner({ SLUICE_BUCKET: "b" })).toThrow(
      /^missing environment variable SLUICE_TABLE: /,
    );
  });

  it("builds a runner from a complete environment without calling AWS, and refuses a bad segment size", () => {
    const runner = createMaintenanceRunner({
      SLUICE_BUCKET: "b",
      SLUICE_TABLE: "t",
      SLUICE_SEGMENT_BYTES: "1048576",
    });
    expect(runner).toBeInstanceOf(MaintenanceRunner);
    expect(runner.context.settings.segmentBytes).toBe(1_048_576);
    expect(() =>
      createMaintenanceRunner({ SLUICE_BUCKET: "b", SLUICE_TABLE: "t", SLUICE_SEGMENT_BYTES: "lots" }),
    ).toThrow(/segmentBytes/);
  });

  it("summarises a run, naming each failed job", () => {
    const summary = summarise({
      topics: 2,
      partitions: 5,
      partitionsQuiet: 3,
      leasesHeld: 1,
      retention: { entriesDeleted: 3 },
      compaction: { segments: 1, entriesReplaced: 40, recordsRemoved: 7 },
      timeIndex: { itemsWritten: 2 },
      garbage: { marked: 4, deleted: 5 },
      purges: { finished: 1, objectsDeleted: 6 },
      failures: [{ job: "compaction", topic: "orders", partition: 2, error: new Error("boom") }],
      stoppedEarly: false,
    });
    expect(summary).toMatchObject({
      entriesExpired: 3,
      segmentsWritten: 1,
      objectsDeleted: 11,
      topicsPurged: 1,
    });
    expect(summary.failures).toEqual(["compaction orders/2: boom"]);
  });
});
