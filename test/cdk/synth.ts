import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SluiceStack } from '../../lib/sluice-stack.js';
import { StackConfigSchema, type StackConfig } from '../../lib/stackConfig.js';

/**
 * Synthesizes the stack for assertions. Bundling is skipped here (the `aws:cdk:bundling-stacks`
 * context): `npm test` runs a real `cdk synth`, which bundles every function, separately.
 */
export function synthStack(config: Partial<StackConfig> = {}, options: { nag?: boolean } = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  if (options.nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const stack = new SluiceStack(app, 'Test', { config: StackConfigSchema.parse(config) });
  return { app, stack, template: () => Template.fromStack(stack) };
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Resources = Record<string, { Type: string; Properties: any }>;

export const resourcesOf = (template: Template, type: string): Resources =>
  template.findResources(type) as Resources;
