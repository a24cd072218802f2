import { Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { onlyLogicalId, propertyOf, resourcesOf, synthStack, TEMPLATE_TEST_ENTRY } from "./test-support.js";

describe("Processor", () => {
  const { stack, template } = synthStack({
    topics: [
      { topicName: "orders", partitions: 3 },
      { topicName: "orders-enriched" },
      { topicName: "orders-dead" },
    ],
    processors: [
      {
        processorName: "enrich",
        topics: ["orders"],
        outputTopics: ["orders-enriched"],
        deadLetterTopic: "orders-dead",
        handlerEntry: TEMPLATE_TEST_ENTRY,
        startingPosition: "EARLIEST",
        ordering: { key: { parallelism: 8 } },
      },
      {
        processorName: "audit",
        topics: ["orders"],
        handlerEntry: TEMPLATE_TEST_ENTRY,
        ordering: { shared: { parallelism: 16 } },
      },
    ],
  });
  const functions = resourcesOf(template, "AWS::Lambda::Function");
  const dispatchers = Object.entries(functions).filter(([, fn]) =>
    String(JSON.stringify(fn.Properties?.Description)).includes("processor dispatcher"),
  );
  const handlers = Object.entries(functions).filter(([, fn]) =>
    String(JSON.stringify(fn.Properties?.Description)).includes("its handler"),
  );
  const processors = Object.values(resourcesOf(template, "Custom::SluiceProcessor"));

  it("runs every processor of the platform in one dispatcher, with the platform's data and cluster", () => {
    expect(dispatchers).toHaveLength(1);
    expect(handlers).toHaveLength(2);
    const [, dispatcher] = dispatchers[0]!;
    expect(dispatcher.Properties).toMatchObject({
      Runtime: "nodejs22.x",
      Architectures: ["arm64"],
      Timeout: 300,
    });
    expect(Object.keys(propertyOf<{ Variables: object }>(dispatcher, "Environment").Variables)).toEqual(
      expect.arrayContaining(["SLUICE_BUCKET", "SLUICE_TABLE", "SLUICE_CLUSTER_ID"]),
    );
  });

  it("reads and writes the data the HTTP function does, in a standard bucket or a directory bucket", () => {
    const express = synthStack({
      platform: { dataStorage: { kind: "express-one-zone", availabilityZoneId: "use1-az4" } },
      topics: [{ topicName: "orders" }],
      processors: [{ processorName: "enrich", topics: ["orders"], handlerEntry: TEMPLATE_TEST_ENTRY }],
    }).template;
    for (const synthesized of [template, express]) {
      const all = Object.values(resourcesOf(synthesized, "AWS::Lambda::Function"));
      const described = (text: string) =>
        all.find((fn) => String(JSON.stringify(fn.Properties?.Description)).includes(text))!;
      const data = (fn: (typeof all)[number]) => {
        const variables = propertyOf<{ Variables: Record<string, unknown> }>(fn, "Environment").Variables;
        return [variables.SLUICE_BUCKET, variables.SLUICE_TABLE, variables.SLUICE_CLUSTER_ID];
      };
      expect(data(described("processor dispatcher"))).toEqual(data(described("Sluice HTTP apps")));
    }
    const directoryId = onlyLogicalId(express, "AWS::S3Express::DirectoryBucket");
    expect(JSON.stringify(express.toJSON())).toContain(`"SLUICE_BUCKET":{"Ref":"${directoryId}"}`);
  });

  it("wakes the dispatcher from the table's stream, filtered to inserts of index entries, and sweeps every minute", () => {
    const mappings = Object.values(resourcesOf(template, "AWS::Lambda::EventSourceMapping"));
    expect(mappings).toHaveLength(1);
    const mapping = mappings[0]!;
    expect(mapping.Properties).toMatchObject({
      StartingPosition: "LATEST",
      BatchSize: 100,
      MaximumRetryAttempts: 2,
    });
    expect(JSON.stringify(mapping.Properties?.EventSourceArn)).toContain("StreamArn");
    const patterns = propertyOf<{ Filters: { Pattern: string }[] }>(mapping, "FilterCriteria").Filters.map(
      (filter) => JSON.parse(filter.Pattern),
    );
    expect(patterns).toEqual([
      { eventName: ["INSERT"], dynamodb: { Keys: { sk: { S: [{ prefix: "index#" }] } } } },
    ]);
    const rules = Object.values(resourcesOf(template, "AWS::Events::Rule")).filter((rule) =>
      JSON.stringify(rule.Properties?.Targets).includes("sweep"),
    );
    expect(rules).toHaveLength(1);
    expect(rules[0]!.Properties).toMatchObject({ ScheduleExpression: "rate(1 minute)", State: "ENABLED" });
    const targets = propertyOf<{ Input: string; Arn: unknown }[]>(rules[0], "Targets");
    expect(JSON.parse(targets[0]!.Input)).toEqual({ sluice: "sweep" });
    expect(JSON.stringify(targets[0]!.Arn)).toContain(dispatchers[0]![0]);
  });

  it("declares each processor through the admin API with its definition, after its topics", () => {
    expect(processors).toHaveLength(2);
    const enrich = processors.find((processor) => processor.Properties?.ProcessorName === "enrich")!;
    expect(enrich.Properties?.ClusterId).toBe("sluice");
    const definition = JSON.stringify(enrich.Properties?.Definition);
    for (const fragment of [
      '\\"topics\\":[\\"orders\\"]',
      '\\"output_topics\\":[\\"orders-enriched\\"]',
      '\\"dead_letter_topic\\":\\"orders-dead\\"',
      '\\"starting_position\\":\\"EARLIEST\\"',
      '\\"ordering\\":\\"KEY\\"',
      '\\"parallelism\\":8',
      '\\"type\\":\\"lambda\\"',
    ]) {
      expect(definition).toContain(fragment);
    }
    const audit = processors.find((processor) => processor.Properties?.ProcessorName === "audit")!;
    const shared = JSON.stringify(audit.Properties?.Definition);
    expect(shared).toContain('\\"ordering\\":\\"SHARED\\"');
    expect(shared).toContain('\\"parallelism\\":16');
    expect(enrich.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^Topicordersenriched/)]));
    expect(enrich).toMatchObject({ DeletionPolicy: "Delete" });
  });

  it("lets the dispatcher invoke exactly the processors' handlers, and read the table's stream", () => {
    const [dispatcherId, dispatcher] = dispatchers[0]!;
    void dispatcherId;
    const roleId = propertyOf<{ "Fn::GetAtt": [string, string] }>(dispatcher, "Role")["Fn::GetAtt"][0];
    const statements = Object.values(resourcesOf(template, "AWS::IAM::Policy"))
      .filter((policy) => JSON.stringify(policy.Properties?.Roles).includes(roleId))
      .flatMap(
        (policy) =>
          propertyOf<{ Statement: { Action: string | string[]; Resource: unknown }[] }>(
            policy,
            "PolicyDocument",
          ).Statement,
      );
    const invoke = statements.filter((statement) =>
      [statement.Action].flat().includes("lambda:InvokeFunction"),
    );
    const invoked = invoke
      .flatMap((statement) => [statement.Resource].flat())
      .map((resource) => JSON.stringify(resource));
    for (const [handlerId] of handlers)
      expect(invoked.some((resource) => resource.includes(handlerId))).toBe(true);
    expect(invoked.every((resource) => handlers.some(([handlerId]) => resource.includes(handlerId)))).toBe(
      true,
    );
    const actions = statements.flatMap((statement) => [statement.Action].flat());
    expect(actions).toEqual(expect.arrayContaining(["dynamodb:GetRecords", "dynamodb:GetShardIterator"]));
    expect(actions.some((action) => action.endsWith("*") && !action.startsWith("dynamodb:ListStreams"))).toBe(
      false,
    );
  });

  it("alarms on each processor's lag and dead-lettered records", () => {
    const alarms = Object.values(resourcesOf(template, "AWS::CloudWatch::Alarm")).filter(
      (alarm) =>
        String(alarm.Properties?.MetricName).startsWith("Processor") &&
        JSON.stringify(alarm.Properties?.Dimensions).includes('"processor"'),
    );
    expect(alarms).toHaveLength(4);
    for (const alarm of alarms) expect(alarm.Properties?.Namespace).toBe("Sluice");
    expect(JSON.stringify(alarms[0]!.Properties?.Dimensions)).toContain('"Value":"sluice-api"');
    const enrich = alarms.filter((alarm) => JSON.stringify(alarm.Properties?.Dimensions).includes("enrich"));
    expect(
      enrich
        .map((alarm) => [
          alarm.Properties?.MetricName,
          alarm.Properties?.Statistic,
          alarm.Properties?.Threshold,
        ])
        .sort(),
    ).toEqual([
      ["ProcessorDeadLettered", "Sum", 1],
      ["ProcessorLagRecords", "Maximum", 10000],
    ]);
  });

  it("adds a row of its own graphs to the platform's dashboard: throughput, p99 handler duration, failures, lag", () => {
    const dashboards = Object.values(resourcesOf(template, "AWS::CloudWatch::Dashboard"));
    expect(dashboards).toHaveLength(1);
    // The body is a Fn::Join of strings and tokens; its literal parts carry the widgets.
    const body = JSON.stringify(dashboards[0]!.Properties?.DashboardBody).replaceAll('\\"', '"');
    for (const processor of ["enrich", "audit"]) {
      for (const title of [
        "records processed",
        "handler duration (p99, ms)",
        "failures, retries, dead-lettered",
        "lag (records) and iterator age",
      ])
        expect(body).toContain(`"title":"Processor ${processor}: ${title}"`);
      for (const metric of [
        "ProcessorRecordsProcessed",
        "ProcessorHandlerDuration",
        "ProcessorFailures",
        "ProcessorRetries",
        "ProcessorDeadLettered",
        "ProcessorLagRecords",
        "ProcessorIteratorAge",
      ])
        expect(body).toContain(`["Sluice","${metric}","processor","${processor}","service","sluice-api"`);
    }
    expect(body).toMatch(
      /"ProcessorHandlerDuration","processor","enrich","service","sluice-api",\{[^}]*"stat":"p99"/,
    );
  });

  it("passes cdk-nag, acknowledging only what the platform's functions acknowledge", () => {
    const report = new AwsSolutionsChecks().validateScope(stack);
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources[0]?.constructPath}`)).toEqual(
      [],
    );
    const acknowledged = stack.node
      .findAll()
      .flatMap((construct) =>
        construct.node.metadata
          .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
          .flatMap((entry) =>
            Object.keys(entry.data as object).map(
              (id) =>
                `${construct.node.path} ${id.replace(/^annotation::/i, "").replace(/<.*>/, "<bucket>")}`,
            ),
          ),
      )
      .filter((line) => line.includes("Processor") || line.includes("Handler"));
    expect(acknowledged.sort()).toEqual([
      "Sluice/Handler-audit AwsSolutions-L1",
      "Sluice/Handler-enrich AwsSolutions-L1",
      "Sluice/Platform/ProcessorDispatcher/Function AwsSolutions-L1",
      "Sluice/Platform/ProcessorDispatcher/Role AwsSolutions-IAM5[Resource::*]",
      "Sluice/Platform/ProcessorDispatcher/Role AwsSolutions-IAM5[Resource::<bucket>/*]",
    ]);
  });
});
