/**
 * A module processor for the local server: enriches each order of `orders` with its unit price
 * and total, into `orders-enriched`. Declared in sluice.processors.json; start the server with
 * SLUICE_PROCESSORS=examples/processors/sluice.processors.json (README, "Processors").
 *
 * An order that is not JSON, or names no quantity, fails: it is retried, then dead-lettered to
 * `orders-dead` with headers saying why, and the other orders carry on.
 */
import { defineRecordProcessor, json } from "@sluice/processor-sdk";

interface Order {
  item: string;
  qty: number;
}

const UNIT_PRICES: Record<string, number> = { tea: 4.5, coffee: 3.2, cake: 5 };

export default defineRecordProcessor((record) => {
  const order = json<Order>(record.value);
  if (order === null || typeof order !== "object" || typeof order.qty !== "number") {
    throw new Error("not an order: expected {item, qty}");
  }
  const unitPrice = UNIT_PRICES[order.item] ?? null;
  return {
    key: record.key,
    value: JSON.stringify({ ...order, unitPrice, total: unitPrice === null ? null : unitPrice * order.qty }),
  };
});
