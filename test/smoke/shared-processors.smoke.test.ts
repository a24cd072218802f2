import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type ServerProcess, startServerProcess, within } from "./processes.js";

/**
 * A shared processor in `npm start`, created over HTTP: a webhook that answers each batch only once
 * four calls are in flight at once (or after ten seconds, so a failure shows as a wrong count, not
 * a hang) proves parallelism past the partition count on a one-partition topic; every record's
 * output arrives in the output topic. Every wait is on an event and bounded.
 */
let dataDir: string;
let server: ServerProcess;
let webhook: Server;
let webhookUrl: string;
let inFlight = 0;
let mostInFlight = 0;
const release: (() => void)[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "sluice-shared-processors-smoke-"));
  server = await startServerProcess(dataDir, { env: { SLUICE_LOG_REQUESTS: "0" } });
  webhook = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const event = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        records: { offset: number; value: { data: string } | null }[];
      };
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      const answer = () => {
        inFlight--;
        response.writeHead(200, { "content-type": "application/json" });
        response.end(
          JSON.stringify({
            outputs: event.records.map((record) => ({
              value: { type: "STRING", data: `done:${record.value?.data ?? ""}` },
            })),
          }),
        );
      };
      const timer = setTimeout(answer, 10_000);
      release.push(() => {
        clearTimeout(timer);
        answer();
      });
      // The fourth call in flight lets every waiting call answer.
      if (inFlight >= 4) for (const go of release.splice(0)) go();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  for (const go of release.splice(0)) go();
  await new Promise<void>((resolve) => webhook?.close(() => resolve()));
  if (server && server.child.exitCode === null) {
    server.child.kill("SIGTERM");
    await within(server.exited, 20_000, "the server to exit");
  }
  await rm(dataDir, { recursive: true, force: true });
});

describe("a shared processor in npm start", () => {
  it("runs more batches at once than its topic has partitions, and appends every record's output", async () => {
    for (const topic of ["scans", "scans-text"])
      expect((await runCli(["topic", "create", topic, "-p", "1"], server.url)).code).toBe(0);
    const processors = `${server.url}/v3/clusters/${server.clusterId}/processors`;
    const created = await fetch(processors, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: "ocr",
        topics: ["scans"],
        handler: { type: "webhook", url: webhookUrl },
        output_topics: ["scans-text"],
        ordering: "SHARED",
        parallelism: 4,
        batch_size: 1,
        starting_position: "EARLIEST",
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect(await created.json()).toMatchObject({ definition: { ordering: "SHARED", parallelism: 4 } });

    const sent = Array.from({ length: 8 }, (_, index) => `scan-${index}`);
    const produced = await runCli(["produce", "scans"], server.url, `${sent.join("\n")}\n`);
    expect(produced.code, produced.stderr).toBe(0);

    const base = `${server.url}/v3/clusters/${server.clusterId}/topics/scans-text/partitions/0/records`;
    const deadline = Date.now() + 60_000;
    let values: unknown[] = [];
    while (values.length < sent.length && Date.now() < deadline) {
      const page = (await (await fetch(`${base}?offset=0&timeout_ms=1000`)).json()) as {
        records: { value: { data: unknown } | null }[];
      };
      values = page.records.map((record) => record.value?.data);
    }
    expect([...values].sort()).toEqual(sent.map((value) => `done:${value}`).sort());
    expect(mostInFlight).toBe(4);

    // The last acceptance lands after its output, and the start offset moves past settled records
    // at the group's next window read (the server's sweep): wait for both, bounded.
    type Details = {
      partitions: unknown[];
      shared: { share_group_id: string; partitions: { start_offset: number; lag: number }[] };
    };
    const settledBy = Date.now() + 20_000;
    let details: Details;
    for (;;) {
      details = (await (await fetch(`${processors}/ocr`)).json()) as Details;
      const [partition] = details.shared.partitions;
      if ((partition?.start_offset === 8 && partition.lag === 0) || Date.now() > settledBy) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(details.partitions).toEqual([]);
    expect(details.shared.share_group_id).toMatch(/^__processor\./);
    expect(details.shared.partitions).toEqual([expect.objectContaining({ start_offset: 8, lag: 0 })]);
  });
});
