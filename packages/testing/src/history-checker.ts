/**
 * A history checker for consumer groups, in the spirit of Jepsen's queue checker: given what was
 * produced, what each member was handed (per assignment) and which commits were acknowledged, it
 * names every anomaly:
 * - lost: a produced record no member was ever handed;
 * - redelivered after commit: a record handed out again after a commit covering it was acknowledged;
 * - non-monotonic / skipped: within one assignment of a partition to a member, offsets that do not
 *   run on one by one from where the assignment started;
 * - started past the commit: an assignment whose first record lies beyond the committed offset at
 *   the time (records between were skipped by the group).
 * Duplicates (a record handed out twice) are allowed only before any commit covers them: those
 * are the records in flight when a member crashed or lost its partition.
 */
export interface Produced {
  partition: number;
  offset: number;
  value: string;
}

export interface Delivery {
  /** One member incarnation's one assignment of the partition. */
  assignment: string;
  partition: number;
  offset: number;
  value: string;
  /** Milliseconds (any monotonic clock shared by the whole history). */
  atMs: number;
  /** The partition's committed offset when this assignment's first fetch started. */
  committedAtStart?: number;
}

export interface Commit {
  partition: number;
  /** The next offset to consume. */
  offset: number;
  /** When the commit was acknowledged. */
  ackedAtMs: number;
}

export interface History {
  produced: Produced[];
  deliveries: Delivery[];
  commits: Commit[];
}

export interface CheckResult {
  lost: Produced[];
  redeliveredAfterCommit: Delivery[];
  nonMonotonic: { assignment: string; partition: number; expected: number; got: number }[];
  startedPastCommit: Delivery[];
  duplicates: number;
}

export function checkHistory(history: History): CheckResult {
  const delivered = new Map<string, Delivery[]>();
  for (const delivery of history.deliveries) {
    const key = `${delivery.partition}:${delivery.offset}`;
    const list = delivered.get(key) ?? [];
    list.push(delivery);
    delivered.set(key, list);
  }
  const lost = history.produced.filter((record) => !delivered.has(`${record.partition}:${record.offset}`));

  // The highest acknowledged commit per partition, as time goes on.
  const commitsByPartition = new Map<number, Commit[]>();
  for (const commit of [...history.commits].sort((a, b) => a.ackedAtMs - b.ackedAtMs)) {
    const list = commitsByPartition.get(commit.partition) ?? [];
    list.push(commit);
    commitsByPartition.set(commit.partition, list);
  }
  const committedBefore = (partition: number, atMs: number): number => {
    let highest = 0;
    for (const commit of commitsByPartition.get(partition) ?? []) {
      if (commit.ackedAtMs >= atMs) break;
      highest = Math.max(highest, commit.offset);
    }
    return highest;
  };
  const redeliveredAfterCommit: Delivery[] = [];
  let duplicates = 0;
  for (const list of delivered.values()) {
    duplicates += list.length - 1;
    for (const delivery of list.slice(1)) {
      if (committedBefore(delivery.partition, delivery.atMs) > delivery.offset)
        redeliveredAfterCommit.push(delivery);
    }
  }

  const nonMonotonic: CheckResult["nonMonotonic"] = [];
  const startedPastCommit: Delivery[] = [];
  const byAssignment = new Map<string, Delivery[]>();
  for (const delivery of history.deliveries) {
    const key = `${delivery.assignment}|${delivery.partition}`;
    const list = byAssignment.get(key) ?? [];
    list.push(delivery);
    byAssignment.set(key, list);
  }
  for (const list of byAssignment.values()) {
    const first = list[0]!;
    if (first.committedAtStart !== undefined && first.offset > first.committedAtStart)
      startedPastCommit.push(first);
    for (let index = 1; index < list.length; index++) {
      const expected = list[index - 1]!.offset + 1;
      if (list[index]!.offset !== expected) {
        nonMonotonic.push({
          assignment: first.assignment,
          partition: first.partition,
          expected,
          got: list[index]!.offset,
        });
      }
    }
  }
  return { lost, redeliveredAfterCommit, nonMonotonic, startedPastCommit, duplicates };
}
