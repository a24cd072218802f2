import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { afterAll } from "vitest";
import { REPO_ROOT } from "./paths.js";
import { SluiceStack, type SluiceStackProps } from "./sluice-stack.js";

/**
 * Template tests build the stack with the feature flags of cdk.json (so they see the template
 * `cdk synth` produces) and with bundling turned off for every stack (`aws:cdk:bundling-stacks`),
 * which keeps esbuild out of the unit suite. With bundling off the entry only has to exist, so the
 * tests use the topic provider's handler as the HTTP apps' entry and do not depend on functions/.
 */
export const TEMPLATE_TEST_ENTRY = join(REPO_ROOT, "infra", "lib", "topic-provider", "handler.ts");

const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, "cdk.json"), "utf8")) as {
  context: Record<string, unknown>;
};

/**
 * Where this test file's apps synthesize. An App without an outdir makes a new `cdk.out…`
 * directory in the system's temporary folder at every synth and leaves it there; the tests share
 * one per file instead (each synth overwrites its stack's files), removed when the file ends.
 */
const outdir = mkdtempSync(join(tmpdir(), "sluice-cdk-test-"));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

export function testApp(context: Record<string, unknown> = {}): App {
  return new App({ outdir, context: { ...cdkJson.context, "aws:cdk:bundling-stacks": [], ...context } });
}

export function synthStack(props: SluiceStackProps = {}): { stack: SluiceStack; template: Template } {
  const stack = new SluiceStack(testApp(), "Sluice", {
    ...props,
    platform: { entry: TEMPLATE_TEST_ENTRY, ...props.platform },
  });
  return { stack, template: Template.fromStack(stack) };
}

type Resources = Record<
  string,
  { Type: string; Properties?: Record<string, unknown> } & Record<string, unknown>
>;

export function resourcesOf(template: Template, type: string): Resources {
  return template.findResources(type) as Resources;
}

/** The values of one environment variable across the template's Lambda functions, where set. */
export function lambdaEnvironmentValues(template: Template, name: string): unknown[] {
  return Object.values(resourcesOf(template, "AWS::Lambda::Function"))
    .map((fn) => (fn.Properties as { Environment?: { Variables?: Record<string, unknown> } }).Environment)
    .map((environment) => environment?.Variables?.[name])
    .filter((value) => value !== undefined);
}

/** The only logical id of a resource type in the template. */
export function onlyLogicalId(template: Template, type: string): string {
  const ids = Object.keys(template.findResources(type));
  if (ids.length !== 1) throw new Error(`expected one ${type}, found ${ids.length}: ${ids.join(", ")}`);
  return ids[0] as string;
}

/** A property of a template resource, failing the test when the resource or property is missing. */
export function propertyOf<T>(
  resource: { Properties?: Record<string, unknown> } | undefined,
  key: string,
): T {
  const value = resource?.Properties?.[key];
  if (value === undefined) throw new Error(`the resource has no property ${key}`);
  return value as T;
}
