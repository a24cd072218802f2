/**
 * Child process for the SQLite cross-process test: performs `count` optimistic increments
 * (read, conditional update, retry on conflict) of one counter in the database at `path`, then
 * prints how many succeeded and how many conflicts it met. Usage: <path> <count>.
 */
import { ConflictError } from "@sluice/core";
import { cond } from "./condition.js";
import { SqliteMetadataStore } from "./sqlite.js";

const [path, countText] = process.argv.slice(2);
if (path === undefined || countText === undefined) throw new Error("usage: <path> <count>");
const count = Number(countText);
const key = { pk: "counter", sk: "cross-process" };
const store = new SqliteMetadataStore({ path });
let successes = 0;
let conflicts = 0;
while (successes < count) {
  const seen = (await store.get(key))?.counter;
  if (typeof seen !== "number") throw new Error(`counter is not a number: ${String(seen)}`);
  try {
    await store.update(key, { set: { counter: seen + 1 } }, { condition: cond.eq("counter", seen) });
    successes += 1;
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    conflicts += 1;
  }
}
store.close();
process.stdout.write(`${JSON.stringify({ successes, conflicts })}\n`);
