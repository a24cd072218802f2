import { CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { SluicePlatform, type SluicePlatformProps } from "./sluice-platform.js";
import { Topic, type TopicProps } from "./topic.js";

export interface TopicDeclaration extends Omit<TopicProps, "platform"> {}

export interface SluiceStackProps extends StackProps {
  readonly platform?: SluicePlatformProps;
  /** Topics created (and kept in shape) at deploy time. */
  readonly topics?: TopicDeclaration[];
}

/** One Sluice deployment: the platform, its declared topics, and the outputs clients need. */
export class SluiceStack extends Stack {
  readonly platform: SluicePlatform;
  readonly topics: Topic[];

  constructor(scope: Construct, id: string, props: SluiceStackProps = {}) {
    super(scope, id, props);
    this.platform = new SluicePlatform(this, "Platform", props.platform);
    this.topics = (props.topics ?? []).map(
      (topic) => new Topic(this, `Topic-${topic.topicName}`, { ...topic, platform: this.platform }),
    );
    new CfnOutput(this, "ApiUrl", {
      value: this.platform.apiUrl.url,
      description: "Base URL of the HTTP API (Confluent REST v3 routes under /v3)",
    });
    new CfnOutput(this, "BucketName", { value: this.platform.dataBucketName });
    new CfnOutput(this, "TableName", { value: this.platform.table.tableName });
    new CfnOutput(this, "ClusterId", { value: this.platform.clusterId });
    if (this.platform.maintenance) {
      new CfnOutput(this, "MaintenanceFunctionName", {
        value: this.platform.maintenance.function.functionName,
        description: 'The maintenance function: invoke it with {} or {"topics":[...]} to run maintenance now',
      });
    }
  }
}
