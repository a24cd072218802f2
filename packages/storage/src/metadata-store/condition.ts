import type { AttributeValue, CompareOperator, Condition } from "./port.js";

/** Builders for conditions, so call sites read like sentences: `cond.eq("epoch", 3)`. */
export const cond = {
  exists: (attribute: string): Condition => ({ kind: "exists", attribute }),
  notExists: (attribute: string): Condition => ({ kind: "not_exists", attribute }),
  compare: (attribute: string, operator: CompareOperator, value: AttributeValue): Condition => ({
    kind: "compare",
    attribute,
    operator,
    value,
  }),
  eq: (attribute: string, value: AttributeValue): Condition => cond.compare(attribute, "=", value),
  and: (...conditions: Condition[]): Condition => ({ kind: "and", conditions }),
  or: (...conditions: Condition[]): Condition => ({ kind: "or", conditions }),
};
