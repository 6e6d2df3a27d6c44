/**
 * What a CDK app imports to subscribe its own Lambda function to a Sluice topic (docs/deploy.md,
 * "Lambda subscribers"; example: examples/subscriber-app/).
 */
export {
  LambdaSubscriber,
  SluiceEndpoint,
  SubscriberGroupProvider,
  subscriberGroupSettings,
  type LambdaSubscriberProps,
  type SluiceEndpointAttributes,
  type SubscriberFilter,
} from './constructs/lambdaSubscriber.js';
export { sluiceParameterNames, type SluiceParameterNames } from './constructs/sluiceExports.js';
