import type { BatchPage, ReadResult } from "./types.js";

/** A page whose records are already decoded (a JSON read), with `BatchPage`'s `decode` over them. */
export function decodedPage(result: ReadResult): BatchPage {
  return {
    ...result,
    empty: result.records.length === 0,
    decode: async (maxRecords = Number.POSITIVE_INFINITY, fromOffset = 0) => {
      const from = firstAtOrAfter(result.records, fromOffset);
      const records = result.records.slice(from, from + maxRecords);
      const last = records[records.length - 1];
      return {
        ...result,
        records,
        nextOffset: last && records.length >= maxRecords ? last.offset + 1 : result.nextOffset,
      };
    },
  };
}

/** The index of the first record at or after `offset` (records are in offset order): a search, as
 * a page handed out in parts asks once per part. */
function firstAtOrAfter(records: readonly { offset: number }[], offset: number): number {
  let low = 0;
  let high = records.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (records[middle]!.offset < offset) low = middle + 1;
    else high = middle;
  }
  return low;
}
