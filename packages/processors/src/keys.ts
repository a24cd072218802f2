/**
 * Every item key of the processors, in one place (ARCHITECTURE.md, "Keys"). A processor's
 * progress items share one `pk`, so one query reads every partition's progress and deleting a
 * processor is a walk over one `pk`; partitions in sort keys are zero-padded to 10 digits so byte
 * order is numeric order.
 */
import type { ItemKey } from "@sluice/storage";

export const PROCESSORS_PK = "processors";

/** The definition of processor `name`: uid, sources, handler, settings, state. */
export function definitionKey(name: string): ItemKey {
  return { pk: PROCESSORS_PK, sk: name };
}

export function progressPk(name: string): string {
  return `processor#${name}`;
}

export const PROGRESS_PREFIX = "partition#";

/** The lease and progress of one source partition (ARCHITECTURE.md, "Processors"). */
export function progressKey(name: string, topic: string, partition: number): ItemKey {
  return { pk: progressPk(name), sk: `${PROGRESS_PREFIX}${topic}#${partition.toString().padStart(10, "0")}` };
}

/** The topic and partition a progress sort key names. */
export function parseProgressSortKey(sk: string): { topic: string; partition: number } {
  const rest = sk.slice(PROGRESS_PREFIX.length);
  const cut = rest.lastIndexOf("#");
  return { topic: rest.slice(0, cut), partition: Number(rest.slice(cut + 1)) };
}
