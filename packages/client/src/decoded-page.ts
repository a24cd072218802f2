import type { BatchPage, ReadResult } from "./types.js";

/** A page whose records are already decoded (a JSON read), with `BatchPage`'s `decode` over them. */
export function decodedPage(result: ReadResult): BatchPage {
  return {
    ...result,
    empty: result.records.length === 0,
    decode: async (maxRecords = Number.POSITIVE_INFINITY, fromOffset = 0) => {
      const from = result.records.findIndex((record) => record.offset >= fromOffset);
      const records = from < 0 ? [] : result.records.slice(from, from + maxRecords);
      const last = records[records.length - 1];
      return {
        ...result,
        records,
        nextOffset: last && records.length >= maxRecords ? last.offset + 1 : result.nextOffset,
      };
    },
  };
}
