import { parseArgs } from "node:util";
import { destroyOnEmulator } from "../infra/emulator/deploy.js";

/**
 * `npm run destroy:local`: empties the bucket of a stack deployed with `npm run deploy:local` and
 * deletes the stack from the emulator at AWS_ENDPOINT_URL (default http://127.0.0.1:4566).
 *
 *   --stack-name <name>   default SluiceLocal
 *   --qualifier <q>       bootstrap qualifier, default sluicelcl
 *   --toolkit-stack-name  bootstrap stack, default SluiceToolkit-<qualifier>
 *   --toolkit             also delete the bootstrap stack and its staging bucket
 */
const { values } = parseArgs({
  options: {
    "stack-name": { type: "string", default: "SluiceLocal" },
    qualifier: { type: "string", default: "sluicelcl" },
    "toolkit-stack-name": { type: "string" },
    toolkit: { type: "boolean", default: false },
  },
});

const started = Date.now();
await destroyOnEmulator({
  stackName: values["stack-name"],
  qualifier: values.qualifier,
  toolkitStackName: values["toolkit-stack-name"],
  removeToolkit: values.toolkit,
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stderr.write(
  `destroyed ${values["stack-name"]} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
);
