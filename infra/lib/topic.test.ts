import { RemovalPolicy, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { SluicePlatform } from "./sluice-platform.js";
import { propertyOf, resourcesOf, synthStack, TEMPLATE_TEST_ENTRY, testApp } from "./test-support.js";
import { Topic } from "./topic.js";

describe("Topic", () => {
  const { template } = synthStack({
    topics: [
      {
        topicName: "orders",
        partitions: 6,
        configs: { "retention.ms": "604800000", "cleanup.policy": "delete" },
      },
      { topicName: "audit", removalPolicy: RemovalPolicy.DESTROY },
    ],
  });
  const topics = resourcesOf(template, "Custom::SluiceTopic");
  const providers = Object.entries(resourcesOf(template, "AWS::Lambda::Function")).filter(
    ([, fn]) => !JSON.stringify(fn.Properties?.Environment ?? {}).includes("SLUICE_BUCKET"),
  );

  it("declares each topic as a custom resource served by one shared provider function", () => {
    expect(Object.keys(topics)).toHaveLength(2);
    expect(providers).toHaveLength(1);
    const [providerId] = providers[0] ?? [];
    for (const topic of Object.values(topics)) {
      expect(topic.Properties?.ServiceToken).toEqual({ "Fn::GetAtt": [providerId, "Arn"] });
    }
  });

  it("passes the cluster, the name, the partition count and the configs to the admin API", () => {
    const orders = Object.values(topics).find((t) => t.Properties?.TopicName === "orders");
    expect(orders?.Properties).toMatchObject({
      ClusterId: "sluice",
      TopicName: "orders",
      PartitionsCount: 6,
      Configs: [
        { name: "retention.ms", value: "604800000" },
        { name: "cleanup.policy", value: "delete" },
      ],
      ServiceTimeout: "600",
    });
  });

  it("retains topics by default and deletes them only when asked", () => {
    const byName = (name: string) => Object.values(topics).find((t) => t.Properties?.TopicName === name);
    expect(byName("orders")).toMatchObject({ DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
    expect(byName("audit")).toMatchObject({ DeletionPolicy: "Delete", UpdateReplacePolicy: "Delete" });
  });

  it("gives the provider only lambda:InvokeFunction on the HTTP function, besides its own logs", () => {
    const [, provider] = providers[0] ?? [];
    const roleId = propertyOf<{ "Fn::GetAtt": [string, string] }>(provider, "Role")["Fn::GetAtt"][0];
    const policy = Object.values(resourcesOf(template, "AWS::IAM::Policy")).find((p) =>
      JSON.stringify(p.Properties?.Roles).includes(roleId),
    );
    const statements = propertyOf<{ Statement: { Action: unknown }[] }>(policy, "PolicyDocument").Statement;
    expect(statements.map((s) => s.Action)).toEqual([
      ["logs:CreateLogStream", "logs:PutLogEvents"],
      "lambda:InvokeFunction",
    ]);
    expect(provider?.Properties).toMatchObject({ Runtime: "nodejs22.x", Architectures: ["arm64"] });
  });

  it("rejects names Kafka would reject and partition counts below one", () => {
    const stack = new Stack(testApp(), "Invalid");
    const platform = new SluicePlatform(stack, "Platform", { entry: TEMPLATE_TEST_ENTRY });
    expect(() => new Topic(stack, "Bad", { platform, topicName: "no spaces" })).toThrow(/topic names/);
    expect(() => new Topic(stack, "Zero", { platform, topicName: "zero", partitions: 0 })).toThrow(
      /partitions/,
    );
    expect(() => new Topic(stack, "Half", { platform, topicName: "half", partitions: 1.5 })).toThrow(
      /partitions/,
    );
    new Topic(stack, "Ok", { platform, topicName: "ok.topic_name-1" });
    Template.fromStack(stack).resourceCountIs("Custom::SluiceTopic", 1);
  });
});
