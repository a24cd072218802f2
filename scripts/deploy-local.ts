import { parseArgs } from "node:util";
import { deployToEmulator, type TopicDeclarationContext } from "../infra/emulator/deploy.js";

/**
 * `npm run deploy:local`: deploys the CDK app onto the emulator at AWS_ENDPOINT_URL (default
 * http://127.0.0.1:4566, MiniStack or LocalStack) with the real CDK CLI, and prints the outputs.
 *
 *   --stack-name <name>   default SluiceLocal
 *   --qualifier <q>       bootstrap qualifier, default sluicelcl
 *   --toolkit-stack-name  bootstrap stack, default SluiceToolkit-<qualifier>
 *   --entry <path>        the HTTP apps' Lambda entry, default functions/src/lambda.ts
 *   --topics <json>       topics to declare, e.g. '[{"topicName":"orders","partitions":3}]'
 *   --quiet               print only the outputs
 */
const { values } = parseArgs({
  options: {
    "stack-name": { type: "string", default: "SluiceLocal" },
    qualifier: { type: "string", default: "sluicelcl" },
    "toolkit-stack-name": { type: "string" },
    entry: { type: "string" },
    topics: { type: "string" },
    quiet: { type: "boolean", default: false },
  },
});

const started = Date.now();
const deployed = await deployToEmulator({
  stackName: values["stack-name"],
  qualifier: values.qualifier,
  toolkitStackName: values["toolkit-stack-name"],
  entry: values.entry,
  topics: values.topics ? (JSON.parse(values.topics) as TopicDeclarationContext[]) : undefined,
  log: values.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
});
process.stderr.write(`deployed ${deployed.stackName} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
process.stdout.write(`${JSON.stringify(deployed, null, 2)}\n`);
