import { cond, type ItemKey, type TransactOperation } from "@sluice/storage";
import { windowStateKey } from "./keys.js";
import { type Batch, encodeRuns, type Window } from "./window.js";

/** Who decided a write and when: stored on every window item it touches (audits, the scenario suite). */
export interface WriteStamp {
  writtenBy: string;
  writtenAtMs: number;
}

/** A changed batch, written under the version it was read at. */
export function batchUpdate(batch: Batch, stamp: WriteStamp): TransactOperation {
  return {
    kind: "update",
    key: batch.key,
    changes: {
      set: {
        count: batch.count,
        runs: encodeRuns(batch.slots),
        version: batch.version + 1,
        writtenBy: stamp.writtenBy,
        writtenAtMs: stamp.writtenAtMs,
      },
    },
    condition: cond.eq("version", batch.version),
  };
}

/** A batch of fresh records; it may replace garbage of an older epoch left on its key by a reset. */
export function batchPut(batch: Batch, stamp: WriteStamp): TransactOperation {
  return {
    kind: "put",
    item: {
      ...batch.key,
      base: batch.base,
      count: batch.count,
      epoch: batch.epoch,
      version: 1,
      runs: encodeRuns(batch.slots),
      writtenBy: stamp.writtenBy,
      writtenAtMs: stamp.writtenAtMs,
    },
    condition: cond.or(cond.notExists("pk"), cond.compare("epoch", "<", batch.epoch)),
  };
}

export function batchDelete(batch: Batch): TransactOperation {
  return { kind: "delete", key: batch.key, condition: cond.eq("version", batch.version) };
}

/** The window's `state` item moved to `start`/`end`: created, or updated under its version. */
export function stateWrite(window: Window, start: number, end: number, stamp: WriteStamp): TransactOperation {
  const state = window.state!;
  const key: ItemKey = windowStateKey(window.groupId, window.topicId, window.partition);
  if (!state.exists) {
    return {
      kind: "put",
      item: {
        ...key,
        groupId: window.groupId,
        topic: window.topic,
        topicId: window.topicId,
        partition: window.partition,
        startOffset: start,
        endOffset: end,
        epoch: state.epoch,
        version: 1,
        writtenBy: stamp.writtenBy,
        writtenAtMs: stamp.writtenAtMs,
      },
      condition: cond.notExists("pk"),
    };
  }
  return {
    kind: "update",
    key,
    changes: {
      set: {
        startOffset: start,
        endOffset: end,
        version: state.version + 1,
        writtenBy: stamp.writtenBy,
        writtenAtMs: stamp.writtenAtMs,
      },
    },
    condition: cond.eq("version", state.version),
  };
}
