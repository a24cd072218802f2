import { SluiceClient } from "@sluice/client";
import { Engine } from "@sluice/engine";
import { createApp } from "@sluice/functions";
import { MemoryMetadataStore, MemoryObjectStore } from "@sluice/storage/memory";
import { beforeEach, describe, expect, it } from "vitest";
import { run } from "./cli.js";
import type { CliIO, Output } from "./io.js";

const URL = "http://sluice.test";

class Capture implements Output {
  text = "";
  isTTY = false;
  write(chunk: string | Uint8Array): boolean {
    this.text += Buffer.from(chunk).toString("utf8");
    return true;
  }
  once(): this {
    return this;
  }
  removeListener(): this {
    return this;
  }
}

let client: SluiceClient;
let cliIO: () => { io: CliIO; stdout: Capture; stderr: Capture };

beforeEach(async () => {
  const metadata = new MemoryMetadataStore();
  const engine = new Engine({ objects: new MemoryObjectStore(), metadata });
  const app = createApp({ engine, metadata, clusterId: "cli-test", logger: { error: () => undefined } });
  const fetch = async (url: string, init: RequestInit) => app.request(url, init);
  client = new SluiceClient({ url: URL, fetch });
  cliIO = () => {
    const stdout = new Capture();
    const stderr = new Capture();
    return {
      io: { stdin: (async function* () {})(), stdout, stderr, env: { SLUICE_URL: URL }, fetch },
      stdout,
      stderr,
    };
  };
  await client.createTopic("jobs", { partitions: 2 });
  await client.produceMany("jobs", [
    { partitionId: 0, value: "a0" },
    { partitionId: 0, value: "a1" },
    { partitionId: 1, value: "b0" },
    { partitionId: 1, value: "b1" },
    { partitionId: 1, value: "b2" },
  ]);
});

async function sluice(...args: string[]) {
  const { io, stdout, stderr } = cliIO();
  const code = await run(args, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe("sluice queue", () => {
  it("consume prints records handed to this member, accepts them, and a second member gets only the rest", async () => {
    const first = await sluice(
      "queue",
      "consume",
      "q",
      "jobs",
      "-o",
      "start",
      "-n",
      "3",
      "-f",
      "%p/%v %d\\n",
    );
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/^sluice: queue q: member [0-9a-f-]+ consuming jobs\n$/);
    const printed = first.stdout.split("\n").filter(Boolean);
    expect(printed).toHaveLength(3);
    expect(printed.every((line) => line.endsWith(" 1"))).toBe(true);
    const second = await sluice("queue", "consume", "q", "jobs", "-n", "2", "-q", "-f", "%p/%v\\n");
    expect(second).toMatchObject({ code: 0, stderr: "" });
    const all = [...printed.map((line) => line.split(" ")[0]), ...second.stdout.split("\n").filter(Boolean)];
    expect(all.sort()).toEqual(["0/a0", "0/a1", "1/b0", "1/b1", "1/b2"]);
  });

  it("describe shows the windows, the lag and the configs; list shows the group", async () => {
    expect(
      (await sluice("queue", "consume", "q", "jobs", "-o", "start", "--delivery-limit", "3", "-n", "2", "-q"))
        .code,
    ).toBe(0);
    const described = await sluice("queue", "describe", "q");
    expect(described.code).toBe(0);
    expect(described.stdout).toContain("DELIVERY-LIMIT  3");
    expect(described.stdout).toContain("TOTAL-LAG       3");
    expect(described.stdout).toMatch(
      /TOPIC\s+PARTITION\s+START-OFFSET\s+END-OFFSET\s+LOG-END-OFFSET\s+IN-FLIGHT\s+AVAILABLE\s+LAG/,
    );
    expect(described.stdout).toContain("no members");
    const json = JSON.parse((await sluice("queue", "describe", "q", "--format", "json")).stdout);
    expect(json).toMatchObject({ group: "q", state: "EMPTY", total_lag: 3, members: [] });
    expect(
      json.partitions
        .map((partition: { lag: number }) => partition.lag)
        .reduce((a: number, b: number) => a + b),
    ).toBe(3);
    expect(json.configs["delivery.count.limit"]).toBe("3");
    const listed = await sluice("queue", "list");
    expect(listed.stdout).toMatch(/^GROUP\s+STATE\s+MEMBERS\s+TOPICS\nq\s+EMPTY\s+0\s+jobs\n$/);
  });

  it("reports usage errors and unknown groups clearly", async () => {
    expect(await sluice("queue", "consume", "q")).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("usage: sluice queue consume"),
    });
    expect(await sluice("queue", "consume", "q", "jobs", "-o", "5")).toMatchObject({ code: 2 });
    expect(await sluice("queue", "describe")).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("missing group id"),
    });
    const unknown = await sluice("queue", "describe", "nope");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("share group not found: nope");
  });
});
