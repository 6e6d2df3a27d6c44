import { App } from 'aws-cdk-lib';
import { SluiceStack } from '../lib/sluice-stack.js';

const app = new App();
new SluiceStack(app, app.node.tryGetContext('stackName') ?? 'Sluice');
