/**
 * A webhook processor's endpoint for the README tour: it receives each batch as JSON (the event
 * of docs/processors.md), prints one line per order and answers 200 with no body (every record
 * done, nothing to append). `PORT` (default 8787; 0 for any free port). Attach it with
 * `npx sluice processor create ship --topic orders-enriched --webhook http://127.0.0.1:8787/ship`.
 */
import { createServer } from "node:http";
import type { ProcessorEvent } from "@sluice/processor-sdk";

const port = Number(process.env.PORT ?? 8787);
const server = createServer((request, response) => {
  let body = "";
  request.setEncoding("utf8");
  request.on("data", (chunk: string) => {
    body += chunk;
  });
  request.on("end", () => {
    let event: ProcessorEvent;
    try {
      event = JSON.parse(body) as ProcessorEvent;
    } catch {
      response.writeHead(400).end("expected a processor event (JSON)");
      return;
    }
    for (const record of event.records) {
      const key = record.key?.type === "STRING" ? record.key.data : JSON.stringify(record.key?.data ?? null);
      process.stdout.write(
        `${event.processor} ${event.topic}/${event.partition}@${record.offset} attempt ${event.attempt}: ship ${key} ${JSON.stringify(record.value?.data)}\n`,
      );
    }
    response.writeHead(200).end();
  });
});
server.listen(port, "127.0.0.1", () => {
  const address = server.address();
  const bound = typeof address === "object" && address ? address.port : port;
  process.stdout.write(`webhook listening on http://127.0.0.1:${bound}/ship\n`);
});
