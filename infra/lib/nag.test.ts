import { Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { synthStack } from "./test-support.js";

/** Every acknowledgment in the construct tree: rule id and reason. */
function acknowledgments(root: IConstruct): { path: string; id: string; reason: string }[] {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id: id.replace(/^annotation::/i, ""),
          reason,
        })),
      ),
  );
}

describe("cdk-nag AwsSolutions checks", () => {
  const { stack } = synthStack({ topics: [{ topicName: "orders" }] });

  it("pass on the whole stack", () => {
    const report = new AwsSolutionsChecks().validateScope(stack);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources[0]?.constructPath}`)).toEqual(
      [],
    );
    expect(report.success).toBe(true);
  });

  it("pass with point-in-time recovery turned off, which is acknowledged with its reason", () => {
    const bare = synthStack({ platform: { pointInTimeRecovery: false } }).stack;
    expect(new AwsSolutionsChecks().validateScope(bare).success).toBe(true);
  });

  it("acknowledge only these findings, each with a reason", () => {
    const found = acknowledgments(stack);
    for (const ack of found) expect(ack.reason.length, `${ack.path} ${ack.id}`).toBeGreaterThan(40);
    expect(found.map((a) => `${a.path} ${a.id.replace(/<.*>/, "<bucket>")}`).sort()).toEqual([
      "Sluice/Platform/Api AwsSolutions-L1",
      "Sluice/Platform/ApiRole AwsSolutions-IAM5[Resource::<bucket>/*]",
      "Sluice/Platform/Bucket AwsSolutions-S1",
      "Sluice/Platform/Maintenance/Function AwsSolutions-L1",
      "Sluice/Platform/Maintenance/Role AwsSolutions-IAM5[Resource::<bucket>/*]",
      "Sluice/Platform/TopicProvider/Function AwsSolutions-L1",
    ]);
  });

  it("would flag the acknowledged findings without the acknowledgments", () => {
    const unacknowledged = new AwsSolutionsChecks();
    // The pack consults acknowledgments through this (private) method; ignore them all.
    (unacknowledged as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
    const rules = unacknowledged.validateScope(stack).violations.map((v) => v.ruleName.split("[")[0]);
    expect([...new Set(rules)].sort()).toEqual(["AwsSolutions-IAM5", "AwsSolutions-L1", "AwsSolutions-S1"]);
  });
});
