import { InvalidArgumentError } from "@sluice/core";
import type { Assignor, AssignorName } from "./assignor.js";
import { rangeAssignor } from "./range.js";
import { uniformAssignor } from "./uniform.js";

export type {
  Assignment,
  AssignmentInput,
  Assignor,
  AssignorMember,
  AssignorName,
  TopicPartition,
} from "./assignor.js";
export { rangeAssignor } from "./range.js";
export { uniformAssignor } from "./uniform.js";

export const ASSIGNORS: Readonly<Record<AssignorName, Assignor>> = Object.freeze({
  uniform: uniformAssignor,
  range: rangeAssignor,
});

/** Sticky and balanced: the fewest revocations when membership changes. */
export const DEFAULT_ASSIGNOR: AssignorName = "uniform";

/** The assignor a group's `assignor` setting names; any other name is a caller error. */
export function assignorByName(name: string): Assignor {
  // hasOwn, not a plain lookup, so that names like "toString" are refused too.
  if (!Object.hasOwn(ASSIGNORS, name)) {
    const valid = Object.keys(ASSIGNORS).sort();
    throw new InvalidArgumentError(`unknown assignor "${name}" (valid: ${valid.join(", ")})`, {
      details: { assignor: name, valid },
    });
  }
  return ASSIGNORS[name as AssignorName];
}
