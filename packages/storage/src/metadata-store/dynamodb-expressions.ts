import type { AttributeValue as DynamoValue } from "@aws-sdk/client-dynamodb";
import { marshallValue } from "./dynamodb-codec.js";
import type { AttributeValue, Condition, SortKeyRange } from "./port.js";
import type { CheckedChanges } from "./validate.js";

/**
 * Builds DynamoDB expressions from the port's typed conditions, updates and sort key ranges.
 * Every attribute name becomes a `#n<i>` placeholder and every value a `:v<i>` placeholder, so no
 * user text is ever spliced into an expression (no reserved-word clashes, no injection).
 */
export class ExpressionBuilder {
  readonly #names = new Map<string, string>();
  readonly #values: Record<string, DynamoValue> = {};
  #valueCount = 0;

  name(attribute: string): string {
    let placeholder = this.#names.get(attribute);
    if (placeholder === undefined) {
      placeholder = `#n${this.#names.size}`;
      this.#names.set(attribute, placeholder);
    }
    return placeholder;
  }

  value(value: AttributeValue): string {
    const placeholder = `:v${this.#valueCount++}`;
    this.#values[placeholder] = marshallValue(value);
    return placeholder;
  }

  /** The placeholder maps for a request; DynamoDB rejects empty maps, so those are left out. */
  parameters(): {
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues?: Record<string, DynamoValue>;
  } {
    const names = Object.fromEntries(
      [...this.#names].map(([attribute, placeholder]) => [placeholder, attribute]),
    );
    return {
      ...(this.#names.size > 0 ? { ExpressionAttributeNames: names } : {}),
      ...(this.#valueCount > 0 ? { ExpressionAttributeValues: { ...this.#values } } : {}),
    };
  }
}

interface Compiled {
  text: string;
  /** True when the text has top-level AND/OR and so needs parentheses inside another and/or. */
  compound: boolean;
}

/** Compiles a validated condition to a ConditionExpression. */
export function compileCondition(condition: Condition, builder: ExpressionBuilder): string {
  return compile(condition, builder).text;
}

function compile(condition: Condition, builder: ExpressionBuilder): Compiled {
  switch (condition.kind) {
    case "exists":
      return { text: `attribute_exists(${builder.name(condition.attribute)})`, compound: false };
    case "not_exists":
      return { text: `attribute_not_exists(${builder.name(condition.attribute)})`, compound: false };
    case "compare":
      return compileCompare(condition, builder);
    case "and":
    case "or": {
      // One inner condition needs no operator and no parentheses (DynamoDB rejects redundant ones).
      const [only] = condition.conditions;
      if (condition.conditions.length === 1 && only) return compile(only, builder);
      const parts = condition.conditions.map((inner) => {
        const compiled = compile(inner, builder);
        return compiled.compound ? `(${compiled.text})` : compiled.text;
      });
      return { text: parts.join(condition.kind === "and" ? " AND " : " OR "), compound: true };
    }
  }
}

function compileCompare(
  condition: Extract<Condition, { kind: "compare" }>,
  builder: ExpressionBuilder,
): Compiled {
  const ordering = condition.operator !== "=" && condition.operator !== "<>";
  const orderable = typeof condition.value === "number" || typeof condition.value === "string";
  if (ordering && !orderable) {
    // The port orders only numbers and strings; DynamoDB would also order binary and refuse other
    // types, so such a comparison compiles to a condition that never holds.
    const pk = builder.name("pk");
    return { text: `attribute_exists(${pk}) AND attribute_not_exists(${pk})`, compound: true };
  }
  const text = `${builder.name(condition.attribute)} ${condition.operator} ${builder.value(condition.value)}`;
  return { text, compound: false };
}

/** Compiles validated changes to an UpdateExpression: SET, ADD and REMOVE clauses. */
export function compileUpdate(changes: CheckedChanges, builder: ExpressionBuilder): string {
  const clauses: string[] = [];
  const set = Object.entries(changes.set).map(
    ([name, value]) => `${builder.name(name)} = ${builder.value(value)}`,
  );
  if (set.length > 0) clauses.push(`SET ${set.join(", ")}`);
  const add = Object.entries(changes.add).map(
    ([name, value]) => `${builder.name(name)} ${builder.value(value)}`,
  );
  if (add.length > 0) clauses.push(`ADD ${add.join(", ")}`);
  const remove = changes.remove.map((name) => builder.name(name));
  if (remove.length > 0) clauses.push(`REMOVE ${remove.join(", ")}`);
  return clauses.join(" ");
}

/** Compiles a partition key and optional sort key range to a KeyConditionExpression. */
export function compileKeyCondition(
  pk: string,
  range: SortKeyRange | undefined,
  builder: ExpressionBuilder,
): string {
  const partition = `${builder.name("pk")} = ${builder.value(pk)}`;
  if (range === undefined) return partition;
  const sk = builder.name("sk");
  switch (range.kind) {
    case "eq":
      return `${partition} AND ${sk} = ${builder.value(range.value)}`;
    case "lt":
      return `${partition} AND ${sk} < ${builder.value(range.value)}`;
    case "lte":
      return `${partition} AND ${sk} <= ${builder.value(range.value)}`;
    case "gt":
      return `${partition} AND ${sk} > ${builder.value(range.value)}`;
    case "gte":
      return `${partition} AND ${sk} >= ${builder.value(range.value)}`;
    case "between":
      return `${partition} AND ${sk} BETWEEN ${builder.value(range.low)} AND ${builder.value(range.high)}`;
    case "begins_with":
      return `${partition} AND begins_with(${sk}, ${builder.value(range.prefix)})`;
  }
}
