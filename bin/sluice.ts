import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SluiceStack } from '../lib/sluice-stack.js';
import { readStackConfig } from '../lib/stackConfig.js';

const app = new App();
const config = readStackConfig((key) => app.node.tryGetContext(key));
new SluiceStack(app, config.stackName, {
  config,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
// cdk-nag's AWS Solutions rules run on every synth; a finding that is not acknowledged (with a reason) fails it.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
