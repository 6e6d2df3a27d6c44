import { Duration, Stack, type App, type StackProps } from 'aws-cdk-lib';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
// In your own app: import from wherever you keep Sluice (this repository's lib/subscriber.ts).
import { LambdaSubscriber, SluiceEndpoint } from '../../../lib/subscriber.js';

export interface OrdersSubscriberStackProps extends StackProps {
  /** Name of the deployed Sluice stack (its SSM parameters are read at deploy time). Default "Sluice". */
  readonly sluiceStackName?: string;
  /** Or Sluice's outputs, given directly: ApiUrl and PushWorkerRoleArn. */
  readonly sluice?: { readonly apiUrl: string; readonly pushWorkerRoleArn: string };
}

/** A user's app: one function that receives the `orders` topic's messages of over 100 through the `billing` group. */
export class OrdersSubscriberStack extends Stack {
  readonly subscriber: LambdaSubscriber;
  readonly fn: NodejsFunction;

  constructor(scope: Construct, id: string, props: OrdersSubscriberStackProps = {}) {
    super(scope, id, props);
    this.fn = new NodejsFunction(this, 'OnOrder', {
      entry: fileURLToPath(new URL('../functions/onOrder.ts', import.meta.url)),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      // Below the subscriber's timeoutSeconds (default 30), so the worker never gives up on a running invocation.
      timeout: Duration.seconds(25),
      bundling: { format: OutputFormat.ESM, target: 'node22' },
    });

    this.subscriber = new LambdaSubscriber(this, 'Billing', {
      sluice: props.sluice ? SluiceEndpoint.fromAttributes(props.sluice) : SluiceEndpoint.fromStackName(this, props.sluiceStackName ?? 'Sluice'),
      topic: 'orders',
      group: 'billing',
      handler: this.fn,
      batchSize: 10,
      filter: { expression: 'body.total > 100' },
    });
  }
}

/**
 * The app, from CDK context: `-c sluiceStack=Sluice` (default), or `-c sluiceApiUrl=… -c sluiceWorkerRoleArn=…`
 * to give Sluice's outputs directly.
 */
export function subscriberApp(app: App): OrdersSubscriberStack {
  const apiUrl = app.node.tryGetContext('sluiceApiUrl') as string | undefined;
  const pushWorkerRoleArn = app.node.tryGetContext('sluiceWorkerRoleArn') as string | undefined;
  if ((apiUrl === undefined) !== (pushWorkerRoleArn === undefined)) {
    throw new Error('give both sluiceApiUrl and sluiceWorkerRoleArn, or neither (then sluiceStack names the Sluice stack)');
  }
  return new OrdersSubscriberStack(app, 'OrdersSubscriber', {
    ...(apiUrl && pushWorkerRoleArn ? { sluice: { apiUrl, pushWorkerRoleArn } } : {}),
    sluiceStackName: (app.node.tryGetContext('sluiceStack') as string | undefined) ?? 'Sluice',
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
}
